import type { SupervisorEvent } from '../supervisor/protocol';
import type { Progress } from './progress';
import { guestOutputFor } from './terminal-text';

/** Hook output on stderr: filtered on a terminal (no sequence but colours), as it came on a file or pipe. */
const hookOutput = guestOutputFor(process.stderr);

/** A supervisor's events on the CLI's stderr (stdout stays the command's or the JSON result). */
export function showEvent(event: SupervisorEvent, progress: Progress): void {
  switch (event.type) {
    case 'log':
      progress.note(event.line);
      return;
    case 'output':
      process.stderr.write(hookOutput(Buffer.from(event.data, 'base64')));
      return;
    case 'progress':
      progress.step(event.step);
      return;
    case 'hookStarted':
      progress.note(`> ${event.description}`);
      return;
    case 'hookFailed':
      progress.note(`warning: ${event.description}`);
      return;
    case 'portForwarded':
      progress.note(`forwarding guest port ${event.port.guestPort} to 127.0.0.1:${event.port.hostPort}`);
      return;
    case 'exited':
      progress.note(`the VM ended: ${event.message}`);
      return;
    case 'hostDiskFull':
      progress.note(`the VM is paused: ${event.message}`);
      return;
    default:
  }
}
