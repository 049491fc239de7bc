import { chooseAccel } from './accel/detect';
import { TCG_WARNING } from './accel/decide';
import { Accel } from './qemu/types';
import { guestAssets } from './kernel/assets';
import { findQemu } from './qemu/binary';
import { microvmHome } from './paths';
import { qemuUser } from './qemu/run-as';
import * as os from 'node:os';

/** What `engineInfo()` reports about this host: the accelerator and isolation, QEMU, the kernel and agent the engine boots. */
export interface EngineInfo {
  accel: Accel;
  isolation: 'hardware' | 'emulated';
  /** Why this accelerator was chosen. */
  accelReason: string;
  /** Present when the VM is not a security boundary (TCG). */
  warning?: string;
  /** `user`: who QEMU runs as once started (the `microvm` user when the engine is root). */
  qemu: { path: string; version: string; seccomp: boolean; user: string };
  kernel: string;
  agent: { sha256: string };
  home: string;
}

/** What VMs started now would run on, and how isolated they would be. */
export async function engineInfo(): Promise<EngineInfo> {
  const assets = await guestAssets();
  const qemu = await findQemu('x86_64');
  const choice = await chooseAccel(assets, qemu);
  return {
    accel: choice.accel,
    isolation: choice.isolation,
    accelReason: choice.reason,
    ...(choice.isolation === 'emulated' ? { warning: TCG_WARNING } : {}),
    qemu: { ...qemu, user: qemuUser()?.name ?? os.userInfo().username },
    kernel: assets.kernelRelease,
    agent: { sha256: assets.agentSha256 },
    home: microvmHome(),
  };
}
