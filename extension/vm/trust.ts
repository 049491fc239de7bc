import { notice, NoticeText } from '../ui/notice-text';

/** Whether a folder may be opened in a VM, decided from trust, isolation and the opt-in. */
export type OpenDecision = { allowed: true } | { allowed: false; message: NoticeText };

export function decideOpen(input: {
  trusted: boolean;
  isolation: 'hardware' | 'emulated';
  allowEmulation: boolean;
}): OpenDecision {
  if (input.trusted || input.isolation === 'hardware' || input.allowEmulation) return { allowed: true };
  return {
    allowed: false,
    message: notice`MicroVM: this folder is not trusted and only TCG software emulation is available on this machine. \
QEMU does not treat TCG as a security boundary, so code from this folder would not be isolated from your machine. \
To open it anyway, set "microvm.allowEmulation": true in your user settings, or trust the folder.`,
  };
}
