/**
 * A dev server: start a long-running server in the VM, forward its port, and use it from the
 * host at `forward.localAddr` ("127.0.0.1:PORT") while the server keeps running; then stop both.
 * Run: node --import tsx examples/dev-server.ts
 */
import { Image } from '../engine';

async function waitForListener(listening: () => Promise<boolean>): Promise<void> {
  for (let i = 0; !(await listening()); i++) {
    if (i > 300) throw new Error('the dev server never listened on port 3000');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  try {
    // The "project": a page the server serves; an edit shows on the next request, no restart.
    await vm.writeFile('/project/www/index.html', 'dev build 1\n');
    const server = vm.spawn({ argv: ['httpd', '-f', '-p', '3000', '-h', '/project/www'], timeoutMs: 0 });
    await waitForListener(async () => (await vm.listeningPorts()).some((l) => l.port === 3000));

    const forward = await vm.exposeTcp(0, 3000);
    console.log(`dev server at http://${forward.localAddr}/`);
    for (const build of [1, 2]) {
      if (build === 2) await vm.writeFile('/project/www/index.html', 'dev build 2\n');
      const page = await fetch(`http://${forward.localAddr}/index.html`);
      console.log(`GET / -> ${page.status} ${(await page.text()).trim()}`);
    }

    await forward.stop();
    server.signal('SIGTERM');
    const ended = await server.wait();
    console.log(`server stopped (signal ${ended.signal})`);
  } finally {
    await vm.release();
    await pool.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
