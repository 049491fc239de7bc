import type { ChildProcess } from 'node:child_process';
import * as net from 'node:net';

/**
 * Call at the end of a test file's last `after` hook. When the file's process is still alive
 * `afterMs` later, something its tests opened was left open in this process (a socket, a
 * child's pipe, a timer) and the runner would wait for the file's whole timeout: this names
 * what is left, on stderr, and ends the process with the status its tests gave. What the
 * product must not leak (QEMU, virtiofsd, sockets, temp files) the tests check themselves;
 * this only keeps a handle of the test's own from turning passed tests into a timeout.
 */
export function exitIfLingering(label: string, afterMs = 30_000): void {
  const timer = setTimeout(() => {
    process.stderr.write(
      `${label}: the test process is still alive ${afterMs} ms after its tests ended; left open: ` +
        `${describeHandles().join('; ') || process.getActiveResourcesInfo().join(', ')}; ending it\n`,
    );
    process.exit();
  }, afterMs);
  timer.unref();
}

/** The handles keeping the event loop alive, described (the stdio streams left out). */
function describeHandles(): string[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const described: string[] = [];
  for (const handle of handles) {
    if (handle === process.stdout || handle === process.stderr || handle === process.stdin) continue;
    if (handle instanceof net.Socket) {
      const where = handle.remoteAddress ? `${handle.remoteAddress}:${handle.remotePort}` : 'a pipe or unix socket';
      described.push(`socket to ${where}${handle.destroyed ? ' (destroyed)' : ''}`);
    } else if (handle instanceof net.Server) {
      described.push(`server listening on ${JSON.stringify(handle.address())}`);
    } else if (isChild(handle)) {
      described.push(`child ${handle.pid} (${handle.spawnargs.join(' ')}), exit code ${handle.exitCode}`);
    } else {
      described.push((handle as object).constructor?.name ?? typeof handle);
    }
  }
  return described;
}

function isChild(handle: unknown): handle is ChildProcess {
  return typeof handle === 'object' && handle !== null && 'spawnargs' in handle && 'pid' in handle;
}
