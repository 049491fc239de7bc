import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { chooseAccel } from '../accel/detect';
import { MicrovmError } from '../errors';
import { guestAssets } from '../kernel/assets';
import { findQemu } from '../qemu/binary';
import { guestArchOf } from '../qemu/arch';
import { kernelCmdline } from '../qemu/argv';
import { hostTscKhz } from '../qemu/host-tsc';
import type { BackendVm, RestoreSource } from '../backend/types';
import { Vm } from '../vm/vm';
import { bake } from './bake';
import { SNAPSHOT_FORMAT, SnapshotImage, SnapshotInputs, snapshotKey } from './meta';
import { loadSnapshot } from './store';

export interface SnapshotRequest {
  image: SnapshotImage;
  /** The root disk's sha256, from its record (engine/rootfs/disk-record.ts). */
  rootDiskSha256: string;
  /** Any other build option that changes what the guest looks like (cmd, env, extra files...). */
  optionsDigest: string;
  snapshotsDir: string;
  warmupTag: string;
  warmup?: (vm: Vm) => Promise<void>;
  guestPort?: number;
  listenerRequired: boolean;
  listenerTimeoutMs: number;
  /** Boots the VM to bake; `signal` is the request's own, for the backend's boot. */
  boot: (signal: AbortSignal | undefined) => Promise<BackendVm>;
  /** Aborting stops the bake: its VM is stopped and nothing is saved (E_ABORTED). */
  signal?: AbortSignal;
  /** Told why a bake happens (no snapshot yet, an input changed, a file is corrupt). */
  onBake: (reason: string) => void;
}

export interface PreparedSnapshot {
  dir: string;
  source: RestoreSource;
  /** The bake's VM, still running, when this call baked. */
  handoff?: BackendVm;
}

/** Reuses the snapshot baked from exactly these inputs, or bakes a new one. */
export async function prepareSnapshot(request: SnapshotRequest): Promise<PreparedSnapshot> {
  const inputs = await snapshotInputs(request);
  const dir = path.join(request.snapshotsDir, snapshotKey(inputs));
  const loaded = await loadSnapshot(dir, inputs);
  if (loaded.ok) return { dir, source: loaded.source };
  request.onBake(`the snapshot in ${dir} cannot be used: ${loaded.reason}`);
  const handoff = await bake({
    boot: () => request.boot(request.signal),
    signal: request.signal,
    config: request.image.config,
    dir,
    inputs,
    image: request.image,
    warmup: request.warmup,
    guestPort: request.guestPort,
    listenerRequired: request.listenerRequired,
    listenerTimeoutMs: request.listenerTimeoutMs,
  });
  const baked = await loadSnapshot(dir, inputs);
  if (!baked.ok) {
    await handoff.stop();
    throw new MicrovmError('E_SNAPSHOT', `a snapshot just baked in ${dir} does not load: ${baked.reason}`);
  }
  return { dir, source: baked.source, handoff };
}

async function snapshotInputs(request: SnapshotRequest): Promise<SnapshotInputs> {
  const arch = guestArchOf(request.image.config.architecture, `image ${request.image.ref}`);
  const assets = await guestAssets(arch);
  const qemu = await findQemu(arch);
  const accel = await chooseAccel(assets, qemu);
  return {
    format: SNAPSHOT_FORMAT,
    image: request.image.manifestDigest,
    rootDisk: path.basename(request.image.rootDisk),
    rootDiskSha256: request.rootDiskSha256,
    boot: assets.bootSha256,
    cmdline: kernelCmdline({
      arch,
      accel: accel.accel,
      tscKhz: hostTscKhz(),
      rootDisk: request.image.rootDisk,
      cmdline: [],
    }).join(' '),
    agent: assets.agentSha256,
    qemu: `${qemu.path}@${qemu.version}`,
    machine: arch === 'x86_64' ? 'microvm' : 'virt-pci',
    accel: accel.accel,
    memoryMib: request.image.memoryMib,
    vcpus: request.image.vcpus,
    warmupTag: request.warmupTag,
    options: createHash('sha256')
      .update(
        JSON.stringify([
          request.optionsDigest,
          request.image.network,
          request.guestPort ?? null,
          request.listenerRequired,
        ]),
      )
      .digest('hex'),
  };
}
