/**
 * Files: write and read guest files, and stage files for one command in the record form
 * `{ '/guest/path': Buffer | string }` (they are written before the command starts).
 * Run: node --import tsx examples/files.ts
 */
import { Image } from '../engine';

async function main(): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  try {
    await vm.writeFile('/tmp/notes.txt', 'written by the host\n');
    console.log(`readFile: ${(await vm.readFile('/tmp/notes.txt')).toString('utf8').trim()}`);

    const result = await vm.exec({
      argv: ['sh', '/app/main.sh'],
      stageFiles: {
        '/app/main.sh': 'echo "config says: $(cat /app/config.txt)"; wc -c < /app/data.bin',
        '/app/config.txt': 'staged',
        '/app/data.bin': Buffer.alloc(4096, 0xab),
      },
      stageFilesMode: 0o644,
    });
    process.stdout.write(result.stdout);

    // Files written inside the guest come back as Buffers.
    await vm.exec({ argv: ['sh', '-c', 'printf "%s" "made in the guest" > /tmp/out.txt'] });
    console.log(`from the guest: ${(await vm.readFile('/tmp/out.txt')).toString('utf8')}`);
  } finally {
    await vm.release();
    await pool.shutdown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
