/**
 * Forward a guest port to the host: a web server in the VM, fetched from the host at
 * `forwarder.localAddr` ("127.0.0.1:PORT"). Forwards ride the agent channel, so they work
 * with `network: 'none'` as well (an image built with it bakes a snapshot of its own).
 * Run: node --import tsx examples/expose-tcp.ts
 */
import { Image } from '../engine';

async function main(): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  try {
    await vm.writeFile('/srv/index.html', 'hello through the forward\n');
    const server = vm.spawn({ argv: ['httpd', '-f', '-p', '8080', '-h', '/srv'], timeoutMs: 0 });
    while (!(await vm.listeningPorts()).some((listener) => listener.port === 8080))
      await new Promise((resolve) => setTimeout(resolve, 100));

    // 0 picks a free host port.
    const forwarder = await vm.exposeTcp(0, 8080);
    console.log(`forwarding ${forwarder.localAddr} -> guest port 8080`);
    const response = await fetch(`http://${forwarder.localAddr}/index.html`);
    console.log(`HTTP ${response.status}: ${(await response.text()).trim()}`);

    await forwarder.stop();
    server.signal('SIGTERM');
    await server.wait();
  } finally {
    await vm.release();
    await pool.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
