/**
 * Snapshots: save a VM as it is (files, processes, memory) and start new VMs from that
 * state. vm.snapshot(dir) returns the new Image; Image.fromSnapshot(dir) loads it again later
 * (another process, another day).
 * Run: node --import tsx examples/snapshot.ts
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image } from '../engine';

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-example-snapshot-'));
  try {
    const pool = (await Image.build()).pool({ min: 1, max: 1 });
    const vm = await pool.acquire();
    await vm.exec({ argv: ['sh', '-c', 'echo "prepared before the snapshot" > /root/state.txt'] });
    const saved = await vm.snapshot(path.join(dir, 'prepared'));
    await vm.release();
    await pool.shutdown();
    console.log(
      `saved ${saved.snapshotPath} (${saved.memoryMib} MiB, ${saved.vcpus} vCPU, ${saved.digest.slice(0, 19)}...)`,
    );

    const image = await Image.fromSnapshot(path.join(dir, 'prepared'));
    const clones = image.pool({ min: 0, max: 2 });
    const [a, b] = await Promise.all([clones.acquire(), clones.acquire()]);
    for (const [name, clone] of [
      ['a', a],
      ['b', b],
    ] as const) {
      console.log(`clone ${name}: ${(await clone.readFile('/root/state.txt')).toString('utf8').trim()}`);
    }
    await Promise.all([a.release(), b.release()]);
    await clones.shutdown();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
