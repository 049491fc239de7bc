import { notice, NoticeText } from './notice-text';

/** What was going on when the error came. */
export type FailureContext = 'open' | 'exited' | 'forward';

/**
 * Host-side failures with a fixed hint the user can act on without reading the log. Every
 * other message may quote guest or config text (a console tail, an image document, a
 * devcontainer.json value), so it goes to the log only.
 */
const HINTS = new Map([
  ['E_SETUP_MISSING', 'the engine\'s guest files or tools are missing: run "npm run setup"'],
  ['E_QEMU_MISSING', 'QEMU was not found: run "npm run setup"'],
  ['E_ACCEL_UNAVAILABLE', 'the accelerator set in "microvm.accelerator" is not available here'],
]);

/** The notification for a failure: a fixed sentence, the error's code, and a pointer to the log. */
export function failureNotice(err: unknown, context: FailureContext, guestPort?: number): NoticeText {
  const code = errorCode(err);
  if (context === 'forward')
    return notice`MicroVM: cannot forward guest port ${guestPort ?? '?'} (${code}); see the MicroVM log.`;
  if (context === 'exited') return notice`MicroVM: the VM stopped unexpectedly (${code}); see the MicroVM log.`;
  if (code === 'DevcontainerError')
    return notice`MicroVM: the folder's devcontainer.json cannot be used; see the MicroVM log.`;
  if (code === 'E_VOLUME')
    return notice`MicroVM: a volume of this workspace could not be mounted; it may be damaged (${code}). Recreate it (its contents are lost) or see the MicroVM log.`;
  const hint = HINTS.get(code);
  if (hint) return notice`MicroVM: ${hint} (${code}). Details are in the MicroVM log.`;
  return notice`MicroVM: the VM could not start (${code}); see the MicroVM log.`;
}

/** The engine's stable code, else the error class's name: never its message. */
function errorCode(err: unknown): string {
  const { code, name } = (err ?? {}) as { code?: unknown; name?: unknown };
  if (typeof code === 'string' && code) return code;
  return typeof name === 'string' && name ? name : 'Error';
}
