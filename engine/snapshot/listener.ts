import { MicrovmError } from '../errors';
import { Vm } from '../vm/vm';

/** TCP state 0A is LISTEN in /proc/net/tcp{,6}. */
const LISTEN = '0A';

/** Local ports in LISTEN state, parsed from the text of /proc/net/tcp and /proc/net/tcp6. */
export function listeningPortsFromProc(text: string): Set<number> {
  const ports = new Set<number>();
  for (const line of text.split('\n')) {
    const [, local = '', , state] = line.trim().split(/\s+/);
    if (state !== LISTEN) continue;
    const port = Number.parseInt(local.split(':')[1] ?? '', 16);
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}

/** Polls the guest until something listens on `port`, or fails after `timeoutMs`. */
export async function waitForListener(vm: Vm, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await vm.exec({ argv: ['cat', '/proc/net/tcp', '/proc/net/tcp6'], timeoutMs: 10_000 });
    if (listeningPortsFromProc(stdout).has(port)) return;
    if (Date.now() > deadline) {
      throw new MicrovmError(
        'E_LISTENER_TIMEOUT',
        `nothing listened on guest port ${port} within ${timeoutMs} ms (listenerRequired); check the image's cmd or the warmup`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
