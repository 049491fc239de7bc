import { qemuBackend } from '../backend/qemu';
import type { VmBackend } from '../backend/types';
import { MicrovmError } from '../errors';
import type { Image } from '../api/image';
import { hostGuestArch } from '../qemu/arch';

/**
 * The extension decides on trust from the isolation of the host CPU's own guests
 * (engineInfo); an image of another architecture runs emulated (TCG). Where the host's own
 * guests are hardware-isolated, a workspace refuses such an image (its own or a compose
 * service's) rather than run the folder's code with less isolation than was checked.
 */
export async function refuseLessIsolated(image: Image, backend: VmBackend | undefined, what: string): Promise<void> {
  const hostArch = hostGuestArch() ?? 'x86_64';
  if (image.arch === hostArch) return;
  const hypervisor = backend ?? qemuBackend;
  const [own, theirs] = await Promise.all([hypervisor.capabilities(hostArch), hypervisor.capabilities(image.arch)]);
  if (own.isolation !== 'hardware' || theirs.isolation === 'hardware') return;
  throw new MicrovmError(
    'E_CONFIG',
    `${what} ${image.ref} is for ${image.arch}, which this ${hostArch} host only emulates (${theirs.accel}, not a security boundary), while the workspace was checked for hardware isolation: use an image for this host's architecture`,
  );
}
