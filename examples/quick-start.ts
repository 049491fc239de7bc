/**
 * Quick start: build an image, keep a pool of ready VMs, borrow one, run a command, give it back.
 * Run: node --import tsx examples/quick-start.ts
 */
import { Image } from '../engine';

async function main(): Promise<void> {
  // No ref: the embedded default image (no registry). Pass `ref: 'debian:bookworm'` for any OCI image.
  const image = await Image.build({ memoryMib: 256, vcpus: 1 });
  const pool = image.pool({ min: 1, max: 2 });
  try {
    const vm = await pool.acquire();
    try {
      const result = await vm.exec({
        argv: ['sh', '-c', 'echo "hello from $(uname -s) $(uname -r)"'],
        timeoutMs: 10_000,
      });
      process.stdout.write(result.stdout);
      console.log(`exit code ${result.exitCode} in ${result.durationMs.toFixed(0)} ms`);
      console.log(`pool: ${JSON.stringify(pool.stats())}`);
    } finally {
      await vm.release();
    }
  } finally {
    await pool.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
