import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GuestAssets } from '../kernel/assets';
import { homePaths } from '../paths';
import { buildQemuArgv } from '../qemu/argv';
import { hostGuestArch } from '../qemu/arch';
import type { GuestArch } from '../qemu/types';
import { QemuBinary } from '../qemu/binary';
import { SupervisedProcess } from '../host/supervised-process';
import { AccelChoice, decideAccel, HostFacts } from './decide';

const PROBE_MARKER = 'MICROVM_PROBE_OK';
const PROBE_TIMEOUT_MS = 8000;

interface ProbeCache {
  key: string;
  ok: boolean;
  detail: string;
}

const chosen = new Map<GuestArch, Promise<AccelChoice>>();

/**
 * Chooses the accelerator once per process and guest architecture (`assets.arch`): a guest
 * of another architecture than the host CPU's runs under TCG. A KVM verdict costs a boot (or
 * a boot timeout where KVM is unusable, as under nested PVM), so it is cached per host boot,
 * kernel and QEMU.
 */
export function chooseAccel(assets: GuestAssets, qemu: QemuBinary): Promise<AccelChoice> {
  let pending = chosen.get(assets.arch);
  if (!pending) {
    pending = detect(assets, qemu);
    chosen.set(assets.arch, pending);
    pending.catch(() => chosen.delete(assets.arch));
  }
  return pending;
}

async function detect(assets: GuestAssets, qemu: QemuBinary): Promise<AccelChoice> {
  const facts: HostFacts = {
    platform: process.platform,
    forced: process.env.MICROVM_ACCEL,
    kvmDevice: canOpenKvm(),
    guestArch: assets.arch,
    hostArch: hostGuestArch(),
  };
  const first = decideAccel(facts);
  if (first !== 'probe') return first;
  const key = [bootId(), assets.bootSha256, qemu.path, qemu.version].join('|');
  const cached = readCache(key);
  const verdict = cached ?? (await probeKvm(assets, qemu));
  if (!cached) writeCache({ key, ...verdict });
  return decideAccel({ ...facts, kvmProbe: verdict }) as AccelChoice;
}

function canOpenKvm(): boolean {
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    return true;
  } catch {
    return false;
  }
}

function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return `uptime-unknown-${os.hostname()}`;
  }
}

function readCache(key: string): { ok: boolean; detail: string } | undefined {
  try {
    const cache = JSON.parse(fs.readFileSync(homePaths.accelCache(), 'utf8')) as ProbeCache;
    if (cache.key === key && typeof cache.ok === 'boolean') return { ok: cache.ok, detail: `${cache.detail}, cached` };
  } catch {
    // no usable cache: probe again
  }
  return undefined;
}

function writeCache(cache: ProbeCache): void {
  const file = homePaths.accelCache();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(cache));
  fs.renameSync(`${file}.tmp`, file);
}

/** Boots the guest kernel under KVM in probe mode; it prints a marker and powers off. */
async function probeKvm(assets: GuestAssets, qemu: QemuBinary): Promise<{ ok: boolean; detail: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-probe-'));
  const started = Date.now();
  try {
    const argv = buildQemuArgv({
      arch: assets.arch,
      accel: 'kvm',
      memoryMib: 128,
      vcpus: 1,
      kernel: assets.kernel,
      initrd: assets.initrd,
      cmdline: ['microvm.mode=probe'],
      agentSocket: path.join(dir, 'agent.sock'),
      qmpSocket: path.join(dir, 'qmp.sock'),
      seccomp: false,
      memory: { kind: 'anonymous' },
    });
    const probe = new SupervisedProcess(assets.launcher, qemu.path, argv);
    await probe.stop(PROBE_TIMEOUT_MS);
    const elapsed = Date.now() - started;
    if (probe.console.text().includes(PROBE_MARKER)) return { ok: true, detail: `booted in ${elapsed} ms` };
    const why = probe.stderr.lastLines(2) || `no boot within ${PROBE_TIMEOUT_MS} ms`;
    return { ok: false, detail: why };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
