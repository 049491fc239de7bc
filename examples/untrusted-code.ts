/**
 * Run untrusted code: borrow a VM, stage the program and its input as files in the record form
 * `{ '/app/main.sh': Buffer }` (mode `stageFilesMode`), run it under a time limit, give the VM
 * back. With `restoreOnRelease` (the default) the next borrower gets a clean VM, whatever the
 * code left behind. The embedded default image has a shell, not Node; with
 * `Image.build({ ref: 'node:20-bookworm' })` stage `/app/main.js` and run `['node', '/app/main.js']`.
 * Run: node --import tsx examples/untrusted-code.ts
 */
import { Image } from '../engine';

/** Code we did not write: it reads its input, leaves a file outside its folder, and may never end. */
const UNTRUSTED = [
  'read numbers < /app/input.txt',
  'sum=0; for n in $numbers; do sum=$((sum + n)); done; echo "sum $sum"',
  'echo mess > /root/left-behind.txt',
  'if [ "$1" = spin ]; then while :; do :; done; fi',
].join('\n');

async function main(): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 1 });
  try {
    for (const mode of ['finish', 'spin']) {
      const vm = await pool.acquire();
      try {
        const result = await vm.exec({
          argv: ['sh', '/app/main.sh', mode],
          stageFiles: {
            '/app/main.sh': Buffer.from(UNTRUSTED),
            '/app/input.txt': Buffer.from('1 2 3 4\n'),
          },
          stageFilesMode: 0o600,
          timeoutMs: 2_000,
        });
        const out = result.stdout.trim();
        console.log(`${mode}: exit ${result.exitCode}, timed out ${result.timedOut}, stdout "${out}"`);
      } finally {
        await vm.release();
      }
    }

    const vm = await pool.acquire();
    try {
      const check = await vm.exec({ argv: ['sh', '-c', 'test -e /root/left-behind.txt && echo dirty || echo clean'] });
      console.log(`next borrower: ${check.stdout.trim()}`);
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
