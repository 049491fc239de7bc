import { TCG_WARNING } from '../accel/decide';
import { Image } from '../api/image';
import { Pool } from '../pool/pool';
import { Vm } from '../vm/vm';
import { VmFlags } from './args';
import { buildNotice, Progress } from './progress';
import { resumeWhenSpaceFreed } from './disk-full';
import { describeEgress } from '../egress/log';

export interface Session {
  vm: Vm;
  close(): Promise<void>;
}

/** Builds the image and boots one VM for a CLI command, with progress on stderr; `signal` stops either. */
export async function openSession(flags: VmFlags, progress: Progress, signal?: AbortSignal): Promise<Session> {
  progress.step(`preparing image ${flags.image ?? '(default)'}`);
  let lastMib = -1;
  const image = await Image.build({
    ref: flags.image,
    platform: flags.platform,
    memoryMib: flags.memoryMib,
    vcpus: flags.vcpus,
    network: flags.network,
    allow: flags.allow,
    mounts: flags.mounts,
    volumes: flags.volumes,
    signal,
    onProgress: (event) => {
      const notice = buildNotice(event);
      if (notice) progress.note(notice);
      if (event.phase === 'pull') {
        if (event.bytes === event.total)
          progress.detail(`layer ${event.digest.slice(7, 19)}: ${(event.total / (1024 * 1024)).toFixed(1)} MiB`);
        return;
      }
      if (event.phase !== 'rootfs') return;
      const mib = Math.floor(event.bytes / (1024 * 1024));
      if (mib >= lastMib + 16) {
        lastMib = mib;
        progress.detail(`root disk: ${event.step}, ${mib} MiB`);
      }
    },
  });
  progress.step('booting the VM');
  const pool: Pool = image.pool({ min: 1, max: 1 });
  pool.onEvent((event) =>
    progress.note(
      event.type === 'vm-failed'
        ? `microvm: VM ${event.vmId} failed (${event.error.code}): ${event.error.message}`
        : `microvm: a VM failed to start: ${event.error.message}`,
    ),
  );
  let vm: Vm;
  try {
    vm = await pool.acquire({ signal });
  } catch (err) {
    await pool.shutdown();
    throw err;
  }
  progress.finish();
  if (vm.accel.isolation === 'emulated') progress.note(`warning: ${TCG_WARNING}`);
  const stopDiskWatch = resumeWhenSpaceFreed(vm, progress);
  const stopRefusals = vm.onShareRefusal((r) =>
    progress.note(
      `microvm: the share refused ${r.op} ${JSON.stringify(r.path)} (${r.errno}): ${r.reason}${r.heldBack ? ` (and ${r.heldBack} more)` : ''}`,
    ),
  );
  const stopEgress = vm.onEgress((e) => progress.note(`microvm: egress ${describeEgress(e)}`));
  for (const { hostPort, guestPort } of flags.publish) {
    try {
      const forwarder = await vm.exposeTcp(hostPort, guestPort);
      progress.note(`forwarding 127.0.0.1:${forwarder.port} -> guest port ${guestPort}`);
      forwarder.onRefused((notice) => progress.note(`microvm: ${notice.message}`));
    } catch (err) {
      await vm.release();
      await pool.shutdown();
      throw err;
    }
  }
  return {
    vm,
    close: async () => {
      stopDiskWatch();
      stopRefusals();
      stopEgress();
      await vm.release();
      await pool.shutdown();
    },
  };
}
