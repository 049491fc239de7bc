import type { ServiceLink } from '../../qemu/network';
import type { Vm } from '../../vm/vm';

/**
 * compose's `network_mode: service:db`: the service (or the workspace) reaches db's ports on
 * `localhost`, as if it shared db's network namespace. Each VM has its own loopback, so the
 * agent binary itself (/proc/1/exe: it lies outside the image's root) runs in relay mode in
 * the VM, listening on 127.0.0.1 at each of db's declared ports and connecting to db's service
 * link address. Only db's declared ports are relayed, exactly what db:PORT reaches by name.
 */
export function startLoopbackRelay(
  vm: Vm,
  of: string,
  links: ServiceLink[],
  address: string | undefined,
  log: (line: string) => void,
): void {
  const ports = links.filter((l) => l.address === address).map((l) => l.port);
  if (!address || ports.length === 0) {
    log(
      `network_mode service:${of}: ${of} declares no ports (expose, ports), so nothing of it is reachable on localhost`,
    );
    return;
  }
  const pairs = ports.flatMap((port) => [`127.0.0.1:${port}`, `${address}:${port}`]);
  const child = vm.spawn({ argv: ['/proc/1/exe', '--relay', ...pairs], timeoutMs: 0, user: { uid: 0, gid: 0 } });
  log(`network_mode service:${of}: localhost:${ports.join(', localhost:')} in this VM reach ${of}`);
  void (async () => {
    let text = '';
    for (let chunk = await child.readStderr(); chunk.length > 0; chunk = await child.readStderr())
      text += chunk.toString('utf8');
    if (/cannot listen/.test(text))
      log(
        `network_mode service:${of}: ${text
          .trim()
          .split('\n')
          .filter((l) => /cannot listen/.test(l))
          .join('; ')}`,
      );
  })().catch(() => undefined);
}
