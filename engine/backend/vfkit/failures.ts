import { MicrovmError, shown } from '../../errors';

/** How a vfkit process ended: its exit code or signal, and the last lines it printed. */
export interface VfkitExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The tail of vfkit's stderr (its logrus lines). */
  output: string;
}

/** vfkit's own messages (cmd/vfkit, pkg/vf of crc-org/vfkit) and what each means here. */
const KNOWN: Array<{ pattern: RegExp; error: (tail: string) => MicrovmError }> = [
  {
    pattern: /com\.apple\.security\.virtualization/,
    error: (tail) =>
      new MicrovmError(
        'E_ACCEL_UNAVAILABLE',
        `vfkit may not use Virtualization.framework: it lacks the com.apple.security.virtualization entitlement (${tail}); reinstall it with \`brew reinstall vfkit\``,
      ),
  },
  {
    pattern: /kernel must be uncompressed/,
    error: (tail) =>
      new MicrovmError(
        'E_BOOT_FAILED',
        `vfkit refused a compressed kernel, which Apple silicon cannot boot (${tail}); remove the vfkit kernel cache under $MICROVM_HOME/vfkit and try again`,
      ),
  },
  {
    pattern: /unknown (?:flag|shorthand flag|option|bootloader type)/,
    error: (tail) =>
      new MicrovmError(
        'E_BACKEND_UNAVAILABLE',
        `this vfkit does not know an option the engine passes (${tail}); update it with \`brew upgrade vfkit\``,
      ),
  },
  {
    pattern: /timeout waiting for VM state/,
    error: (tail) =>
      new MicrovmError(
        'E_BOOT_TIMEOUT',
        `the Virtualization.framework did not start the VM within vfkit's 5 s (${tail}); try again`,
      ),
  },
  {
    pattern: /address already in use/,
    error: (tail) =>
      new MicrovmError(
        'E_STATE_DIR',
        `vfkit could not create a socket in the VM's state directory (${tail}); another VM uses it; try again`,
      ),
  },
  {
    pattern: /hypervisor virtualization error|VZErrorDomain|Invalid virtual machine configuration/,
    error: (tail) =>
      new MicrovmError(
        'E_BOOT_FAILED',
        `the Virtualization.framework refused the VM (${tail}); check memory and CPU counts against this Mac's and the files in the message`,
      ),
  },
];

/**
 * The engine error for a vfkit that ended: one of vfkit's known messages, else what its exit
 * says. The guest powering off ends vfkit with status 0 (VM_EXITED, as QEMU's quit).
 */
export function vfkitExitError(exit: VfkitExit, during: 'boot' | 'run'): MicrovmError {
  const tail = shown(lastLines(exit.output, 3));
  for (const known of KNOWN) if (known.pattern.test(exit.output)) return known.error(tail);
  if (exit.signal) return new MicrovmError('E_VM_EXITED', `vfkit was killed by ${exit.signal} (${tail})`);
  if (exit.code === 0) return new MicrovmError('E_VM_EXITED', 'the guest powered off and vfkit exited');
  return new MicrovmError(
    during === 'boot' ? 'E_BOOT_FAILED' : 'E_VM_EXITED',
    `vfkit exited with status ${exit.code} ${during === 'boot' ? 'while the VM booted' : 'while the VM ran'} (${tail}); the guest console log in the VM's state directory says more`,
  );
}

function lastLines(text: string, count: number): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}
