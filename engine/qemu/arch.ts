import { MicrovmError, shown } from '../errors';
import type { GuestArch } from './types';

/** The guest architectures the engine can run, each with its own kernel, initramfs and QEMU. */
export const GUEST_ARCHS: readonly GuestArch[] = ['x86_64', 'aarch64'];

/** OCI `architecture` values (the image config's, GOARCH names) and the guest each runs as. */
const OCI_ARCHS: Readonly<Record<string, GuestArch>> = { amd64: 'x86_64', arm64: 'aarch64' };

/**
 * The guest architecture of an image, from its config's `architecture`; an image that names
 * none runs as x86_64, as every image did before arm64 guests existed.
 */
export function guestArchOf(architecture: string | undefined, where: string): GuestArch {
  if (architecture === undefined || architecture === '') return 'x86_64';
  const arch = OCI_ARCHS[architecture];
  if (arch) return arch;
  throw new MicrovmError(
    'E_IMAGE_UNSUPPORTED',
    `${where} is for architecture ${shown(architecture)}, which the engine cannot run (it runs ${Object.keys(OCI_ARCHS).join(' and ')}); pull or build the image for linux/amd64 or linux/arm64`,
  );
}

/** The guest architecture the host's CPU runs natively (under KVM or HVF); undefined for other hosts. */
export function hostGuestArch(arch: string = process.arch): GuestArch | undefined {
  if (arch === 'x64') return 'x86_64';
  if (arch === 'arm64') return 'aarch64';
  return undefined;
}
