import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, removeVolume, type VmOf as Vm } from '../../engine';
import { engineHome } from '../engine-home';
import { GroupResult } from '../types';
import { Sizes } from './sizes';

/**
 * Warm reopen of a mounted workspace VM (a temp folder shared, a volume inside it): each
 * resume of the suspended q35 VM until its folder is mounted again, against the raw restore
 * inside that same resume (QEMU spawn, device state loaded, agent answering: no folder);
 * and a cold boot of the same VM on q35 against one on microvm (the path without warm reopen).
 */
export async function measureWarm(sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-warm-'));
  fs.chmodSync(folder, 0o755);
  const volume = `bench-warm-${process.pid}`;
  const suspended = path.join(engineHome.suspended(), `bench-${process.pid}`);
  fs.mkdirSync(suspended, { recursive: true, mode: 0o700 });
  const files = { stateFile: path.join(suspended, 'state'), memFile: path.join(suspended, 'memory') };
  const image = await Image.build({
    mounts: [{ hostPath: folder, guestPath: '/workspace' }],
    volumes: [{ name: volume, mountPoint: '/workspace/node_modules', sizeMib: 64 }],
  });
  const warm: number[] = [];
  const raw: number[] = [];
  const q35: number[] = [];
  const microvm: number[] = [];
  let vm: Vm | undefined;
  try {
    for (let i = 0; i < sizes.boots; i++) {
      let started = performance.now();
      vm = await image.workspaceVm();
      q35.push(performance.now() - started);
      await vm.release();
      started = performance.now();
      const pool = image.pool({ min: 0, max: 1, acquireTimeoutMs: 0 });
      await (await pool.acquire()).release();
      microvm.push(performance.now() - started);
      await pool.shutdown();
      log(
        `workspace cold boot ${i + 1}/${sizes.boots}: q35 ${q35[i]?.toFixed(0)} ms, microvm ${microvm[i]?.toFixed(0)} ms`,
      );
    }
    vm = await image.workspaceVm();
    await vm.suspend(files.stateFile, files.memFile);
    for (let i = 0; i < sizes.boots; i++) {
      const started = performance.now();
      vm = await image.workspaceVm({ kind: 'suspended', ...files });
      warm.push(performance.now() - started);
      raw.push(vm.startTimings.agent);
      log(`warm reopen ${i + 1}/${sizes.boots}: ${warm[i]?.toFixed(0)} ms (raw restore ${raw[i]?.toFixed(0)} ms)`);
      await vm.suspend(files.stateFile, files.memFile);
      vm = undefined;
    }
  } finally {
    await vm?.release();
    fs.rmSync(suspended, { recursive: true, force: true });
    fs.rmSync(folder, { recursive: true, force: true });
    await removeVolume(volume);
  }
  return {
    measurements: [
      {
        ours: { name: 'warm reopen (resume, folder attached)', unit: 'ms', better: 'lower', values: warm },
        baseline: { name: 'raw restore of the same VM', unit: 'ms', better: 'lower', values: raw },
      },
      {
        ours: { name: 'workspace cold boot (q35)', unit: 'ms', better: 'lower', values: q35 },
        baseline: { name: 'workspace cold boot (microvm)', unit: 'ms', better: 'lower', values: microvm },
      },
    ],
    notes: [
      'warm: a 256 MiB default-image VM with a shared temp folder and a 64 MiB volume inside it; the raw restore is the part of each resume until the agent answers.',
    ],
  };
}
