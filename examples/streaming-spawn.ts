/**
 * Streaming spawn with a pty: write to the process's stdin, read its output as it comes,
 * resize the terminal, and read until the end (a zero-length chunk).
 * Run: node --import tsx examples/streaming-spawn.ts
 */
import { Image } from '../engine';

async function main(): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  try {
    const child = vm.spawn({
      argv: ['sh', '-c', 'stty size; read name; echo "hello, $name"; stty size'],
      tty: true,
      winsize: { rows: 24, cols: 80 },
      timeoutMs: 30_000,
    });
    let screen = '';
    const reading = (async () => {
      for (let chunk = await child.readStdout(); chunk.length > 0; chunk = await child.readStdout())
        screen += chunk.toString('utf8');
    })();
    while (!screen.includes('24 80')) await new Promise((resolve) => setTimeout(resolve, 20));
    child.resize(40, 120);
    // A pty turns the carriage return into the newline `read` waits for.
    await child.writeStdin('microvm\r');
    const result = await child.wait();
    await reading;
    // The pty echoes what was typed; print the process's own lines.
    for (const line of screen.split(/\r?\n/)) if (/^(hello|\d+ \d+)/.test(line)) console.log(line);
    console.log(`exit code ${result.exitCode}`);
  } finally {
    await vm.release();
    await pool.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
