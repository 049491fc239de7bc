import { MicrovmError } from '../errors';
import { qemuBackend } from './qemu';
import type { VmBackend } from './types';
import { vfkitBackend } from './vfkit/backend';

/** The backends MICROVM_BACKEND names. */
export const BACKEND_NAMES = ['qemu', 'vfkit'] as const;

/**
 * The backend VMs boot on when a caller gives none: MICROVM_BACKEND (qemu or vfkit), else
 * vfkit on macOS (experimental) and QEMU everywhere else. vfkit anywhere but macOS is refused
 * here, before anything is pulled.
 */
export function defaultBackend(env: NodeJS.ProcessEnv = process.env, platform = process.platform): VmBackend {
  const named = env.MICROVM_BACKEND?.trim() || undefined;
  if (named !== undefined && !(BACKEND_NAMES as readonly string[]).includes(named)) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `MICROVM_BACKEND=${JSON.stringify(named)} is not a backend; use ${BACKEND_NAMES.join(' or ')}, or unset it`,
    );
  }
  const name = named ?? (platform === 'darwin' ? 'vfkit' : 'qemu');
  if (name === 'vfkit' && platform !== 'darwin') {
    throw new MicrovmError(
      'E_BACKEND_UNAVAILABLE',
      `MICROVM_BACKEND=vfkit needs macOS (Apple's Virtualization.framework); this host is ${platform}: unset MICROVM_BACKEND or set it to qemu`,
    );
  }
  return name === 'vfkit' ? vfkitBackend : qemuBackend;
}
