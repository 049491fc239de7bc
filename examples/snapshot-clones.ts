/**
 * Prepare once, start many: set a VM up (files written, a background service running),
 * snapshot it, and start clones from the saved state with `Image.fromSnapshot`. Each clone
 * starts where the prepared VM was, its service running, and what one clone changes the others
 * never see.
 * Run: node --import tsx examples/snapshot-clones.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image } from '../engine';

async function prepare(dir: string): Promise<void> {
  const pool = (await Image.build()).pool({ min: 1, max: 1 });
  const vm = await pool.acquire();
  try {
    await vm.writeFile('/srv/data.txt', 'prepared dataset\n');
    // A background service, detached from the command that started it, is running when the
    // snapshot is taken: every clone has it running too.
    await vm.exec({
      argv: ['sh', '-c', 'setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > /run/service.pid'],
    });
    const saved = await vm.snapshot(dir);
    console.log(`prepared snapshot: ${path.basename(saved.snapshotPath ?? '')}`);
  } finally {
    await vm.release();
    await pool.shutdown();
  }
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-example-clones-'));
  const dir = path.join(root, 'prepared');
  try {
    await prepare(dir);
    const clones = (await Image.fromSnapshot(dir)).pool({ min: 0, max: 3 });
    try {
      const vms = await Promise.all([clones.acquire(), clones.acquire(), clones.acquire()]);
      await vms[0]!.writeFile('/srv/data.txt', 'changed by clone 0\n');
      for (const [i, vm] of vms.entries()) {
        const state = await vm.exec({
          argv: ['sh', '-c', 'cat /srv/data.txt; kill -0 "$(cat /run/service.pid)" && echo service running'],
        });
        console.log(`clone ${i}: ${state.stdout.trim().split('\n').join(', ')}`);
      }
      await Promise.all(vms.map((vm) => vm.release()));
    } finally {
      await clones.shutdown();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
