import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { homePaths } from '../../paths';
import { AGENT_VSOCK_PORT, vfkitArgv, vfkitKernelCmdline } from './argv';
import { vfkitExitError, type VfkitExit } from './failures';
import { uncompressedKernel } from './kernel';

/** What a probe boot showed: whether the guest booted and powered off, how long it took, its console. */
export interface VfkitProbeReport {
  ok: boolean;
  ms: number;
  argv: string[];
  /** The guest console (hvc0), when the kernel had the virtio console driver early enough to write it. */
  console: string;
  /** The agent's probe marker reached the console. */
  marker: boolean;
  error?: string;
}

/**
 * Boots the kernel and initramfs alone under vfkit with the agent in probe mode (it writes
 * MICROVM_PROBE_OK and powers off, and vfkit then exits 0): proof on a Mac that vfkit, its
 * entitlement, the kernel's format and the initramfs work, before any workload VM can.
 */
export async function probeBoot(
  vfkit: string,
  assets: { kernel: string; initrd: string },
  timeoutMs = 60_000,
): Promise<VfkitProbeReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-vfkit-'));
  const started = Date.now();
  try {
    const kernel = await uncompressedKernel(assets.kernel, homePaths.vfkitKernels());
    const argv = vfkitArgv({
      kernel,
      initrd: assets.initrd,
      cmdline: vfkitKernelCmdline({ rootDisk: false, agentPort: AGENT_VSOCK_PORT, extra: ['microvm.mode=probe'] }),
      memoryMib: 256,
      vcpus: 1,
      disks: [],
      shares: [],
      agent: { port: AGENT_VSOCK_PORT, socket: path.join(dir, 'agent.sock') },
      consoleLog: path.join(dir, 'console.log'),
      restSocket: path.join(dir, 'rest.sock'),
      network: false,
    });
    const exit = await runToExit(vfkit, argv, timeoutMs);
    const console = fs.existsSync(path.join(dir, 'console.log'))
      ? fs.readFileSync(path.join(dir, 'console.log'), 'utf8')
      : '';
    const ok = exit.code === 0 && exit.signal === null;
    return {
      ok,
      ms: Date.now() - started,
      argv,
      console,
      marker: console.includes('MICROVM_PROBE_OK'),
      ...(ok ? {} : { error: vfkitExitError(exit, 'boot').message }),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs vfkit until it exits, killing it past `timeoutMs` or when this process exits first. */
function runToExit(vfkit: string, argv: string[], timeoutMs: number): Promise<VfkitExit> {
  return new Promise((resolve) => {
    const child = spawn(vfkit, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-8192));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    const timer = setTimeout(() => {
      output += `\nno power-off within ${timeoutMs} ms`;
      kill();
    }, timeoutMs);
    child.on('error', (err) => (output += `\n${err.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', kill);
      resolve({ code, signal, output });
    });
  });
}
