import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { GuestArch } from './types';

const run = promisify(execFile);

export interface QemuBinary {
  path: string;
  version: string;
  /** This build has the seccomp sandbox (-sandbox). */
  seccomp: boolean;
}

const found = new Map<string, Promise<QemuBinary>>();

/**
 * The QEMU binary for a guest architecture: $MICROVM_QEMU (x86_64) or $MICROVM_QEMU_AARCH64,
 * else qemu-system-ARCH on PATH.
 */
export function findQemu(arch: GuestArch): Promise<QemuBinary> {
  const name = process.env[qemuVariable(arch)] || `qemu-system-${arch}`;
  let pending = found.get(name);
  if (!pending) {
    pending = probe(name, arch);
    found.set(name, pending);
    pending.catch(() => found.delete(name));
  }
  return pending;
}

function qemuVariable(arch: GuestArch): string {
  return arch === 'x86_64' ? 'MICROVM_QEMU' : `MICROVM_QEMU_${arch.toUpperCase()}`;
}

/** The Debian package with each architecture's QEMU system emulator. */
const QEMU_PACKAGE: Record<GuestArch, string> = { x86_64: 'qemu-system-x86', aarch64: 'qemu-system-arm' };

async function probe(name: string, arch: GuestArch): Promise<QemuBinary> {
  const variable = qemuVariable(arch);
  const binary = name.includes('/') ? name : lookPath(name);
  if (!binary) {
    throw new MicrovmError(
      'E_QEMU_MISSING',
      `QEMU (${name}) was not found on PATH; run \`npm run setup\` (it installs Debian's ${QEMU_PACKAGE[arch]}), or set ${variable} to the binary`,
    );
  }
  if (!fs.existsSync(binary)) {
    throw new MicrovmError(
      'E_QEMU_MISSING',
      `QEMU binary ${binary} does not exist${process.env[variable] ? ` (set by ${variable})` : ''}; point ${variable} at a QEMU system emulator, or unset it to use the one on PATH`,
    );
  }
  try {
    const [{ stdout: versionText }, { stdout: helpText }] = await Promise.all([
      run(binary, ['-version']),
      run(binary, ['-help'], { maxBuffer: 4 * 1024 * 1024 }),
    ]);
    const version = /version (\d+\.\d+\.\d+)/.exec(versionText)?.[1] ?? 'unknown';
    return { path: binary, version, seccomp: /^-sandbox /m.test(helpText) };
  } catch (err) {
    throw new MicrovmError('E_QEMU_MISSING', `${binary} does not run: ${(err as Error).message}`, { cause: err });
  }
}

function lookPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
