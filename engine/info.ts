import { chooseAccel } from './accel/detect';
import { TCG_WARNING } from './accel/decide';
import { Accel, GuestArch } from './qemu/types';
import { guestAssets, type GuestAssets } from './kernel/assets';
import { findQemu } from './qemu/binary';
import { GUEST_ARCHS, hostGuestArch } from './qemu/arch';
import { microvmHome } from './paths';
import { qemuUser } from './qemu/run-as';
import { isMicrovmError } from './errors';
import * as os from 'node:os';
import { defaultBackend } from './backend/select';
import { vfkitBackend } from './backend/vfkit/backend';

/** A guest architecture as this host runs it: its accelerator, QEMU and kernel. */
export interface GuestArchInfo {
  arch: GuestArch;
  accel: Accel;
  isolation: 'hardware' | 'emulated';
  accelReason: string;
  qemu: { path: string; version: string };
  kernel: string;
}

/** What `engineInfo()` reports about this host: the accelerator and isolation, QEMU, the kernel and agent the engine boots. */
export interface EngineInfo {
  /** The top-level fields describe guests of the host CPU's own architecture (x86_64 elsewhere). */
  arch: GuestArch;
  accel: Accel;
  isolation: 'hardware' | 'emulated';
  /** Why this accelerator was chosen. */
  accelReason: string;
  /** Present when the VM is not a security boundary (TCG). */
  warning?: string;
  /**
   * `user`: who QEMU runs as once started (the `microvm` user when the engine is root). With
   * the vfkit backend QEMU is not used: `path` and `version` are empty.
   */
  qemu: { path: string; version: string; seccomp: boolean; user: string };
  kernel: string;
  agent: { sha256: string };
  home: string;
  /** Every guest architecture the engine can run here (an image's config `architecture` picks one). */
  architectures: GuestArchInfo[];
  /** The architectures it cannot run here, and why (their kernel or QEMU is not installed). */
  unavailable?: Array<{ arch: GuestArch; reason: string }>;
  /**
   * The backend VMs boot on (MICROVM_BACKEND, else this host's default): `experimental` is set
   * for vfkit (macOS), with why it is and what is off on it.
   */
  backend: { name: string; experimental: boolean; notes?: string[] };
}

/** What VMs started now would run on, and how isolated they would be. */
export async function engineInfo(): Promise<EngineInfo> {
  const backend = await backendInfo();
  const main = hostGuestArch() ?? 'x86_64';
  const assets = await guestAssets(main);
  if (backend.name === 'vfkit') return vfkitInfo(main, backend, assets);
  const qemu = await findQemu(main);
  const choice = await chooseAccel(assets, qemu);
  const architectures: GuestArchInfo[] = [];
  const unavailable: Array<{ arch: GuestArch; reason: string }> = [];
  for (const arch of GUEST_ARCHS) {
    try {
      architectures.push(await archInfo(arch));
    } catch (err) {
      if (!isMicrovmError(err, 'E_SETUP_MISSING') && !isMicrovmError(err, 'E_QEMU_MISSING')) throw err;
      unavailable.push({ arch, reason: err.message });
    }
  }
  return {
    arch: main,
    accel: choice.accel,
    isolation: choice.isolation,
    accelReason: choice.reason,
    ...(choice.isolation === 'emulated' ? { warning: TCG_WARNING } : {}),
    qemu: { ...qemu, user: qemuUser()?.name ?? os.userInfo().username },
    kernel: assets.kernelRelease,
    agent: { sha256: assets.agentSha256 },
    home: microvmHome(),
    architectures,
    ...(unavailable.length > 0 ? { unavailable } : {}),
    backend,
  };
}

/** The vfkit backend's view: Virtualization.framework (HVF), hardware isolation, no QEMU. */
function vfkitInfo(arch: GuestArch, backend: EngineInfo['backend'], assets: GuestAssets): EngineInfo {
  const accelReason = "Apple's Virtualization.framework through vfkit (experimental, unverified)";
  return {
    arch,
    accel: 'hvf',
    isolation: 'hardware',
    accelReason,
    qemu: { path: '', version: '', seccomp: false, user: os.userInfo().username },
    kernel: assets.kernelRelease,
    agent: { sha256: assets.agentSha256 },
    home: microvmHome(),
    architectures: [
      {
        arch,
        accel: 'hvf',
        isolation: 'hardware',
        accelReason,
        qemu: { path: '', version: '' },
        kernel: assets.kernelRelease,
      },
    ],
    backend,
  };
}

async function backendInfo(): Promise<EngineInfo['backend']> {
  const backend = defaultBackend();
  if (backend !== vfkitBackend) return { name: backend.name, experimental: false };
  const host = await vfkitBackend.host();
  return { name: 'vfkit', experimental: true, notes: host.ok ? host.notes : [`unavailable: ${host.reason}`] };
}

async function archInfo(arch: GuestArch): Promise<GuestArchInfo> {
  const assets = await guestAssets(arch);
  const qemu = await findQemu(arch);
  const choice = await chooseAccel(assets, qemu);
  return {
    arch,
    accel: choice.accel,
    isolation: choice.isolation,
    accelReason: choice.reason,
    qemu: { path: qemu.path, version: qemu.version },
    kernel: assets.kernelRelease,
  };
}
