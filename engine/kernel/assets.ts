import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { MicrovmError } from '../errors';
import { homePaths } from '../paths';
import type { GuestArch } from '../qemu/types';

/** The guest kernel, initramfs and host launcher that scripts/setup installed for one guest architecture. */
export interface GuestAssets {
  arch: GuestArch;
  kernel: string;
  initrd: string;
  launcher: string;
  kernelRelease: string;
  /** sha256 of the agent binary inside the initramfs. */
  agentSha256: string;
  /** sha256 of kernel + initramfs together: the input that snapshots and probes key on. */
  bootSha256: string;
}

interface Manifest {
  kernelRelease: string;
  agentSha256: string;
  files: Record<string, { sha256: string; size: number }>;
}

const loaded = new Map<GuestArch, Promise<GuestAssets>>();

/**
 * Loads and verifies one architecture's assets once per process; a corrupt or missing file is
 * an error. Each architecture has its own manifest (assets/manifest.json for x86_64,
 * assets/aarch64/manifest.json for aarch64), its files named relative to assets/.
 */
export function guestAssets(arch: GuestArch = 'x86_64'): Promise<GuestAssets> {
  let pending = loaded.get(arch);
  if (!pending) {
    pending = load(arch);
    loaded.set(arch, pending);
    pending.catch(() => loaded.delete(arch));
  }
  return pending;
}

async function load(arch: GuestArch): Promise<GuestAssets> {
  const manifestPath = homePaths.assetsManifest(arch);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await fs.promises.readFile(manifestPath, 'utf8')) as Manifest;
  } catch (err) {
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `the ${arch} guest kernel and agent are not installed (${manifestPath} is missing or unreadable); run \`npm run setup\``,
      { cause: err },
    );
  }
  const assetsDir = homePaths.assetsDir();
  const prefix = arch === 'x86_64' ? '' : `${arch}/`;
  const files = { kernel: `${prefix}vmlinuz`, initrd: `${prefix}initrd.cpio`, launcher: 'bin/microvm-launch' } as const;
  const hashes: string[] = [];
  for (const name of Object.values(files)) {
    const expected = manifest.files?.[name];
    const file = path.join(assetsDir, name);
    const actual = await sha256File(file).catch(() => undefined);
    if (!expected || actual !== expected.sha256) {
      throw new MicrovmError(
        'E_SETUP_MISSING',
        `${file} is ${actual ? 'corrupt (its sha256 does not match the setup manifest)' : 'missing'}; run \`npm run setup\` to rebuild it`,
      );
    }
    hashes.push(actual);
  }
  return {
    arch,
    kernel: path.join(assetsDir, files.kernel),
    initrd: path.join(assetsDir, files.initrd),
    launcher: path.join(assetsDir, files.launcher),
    kernelRelease: manifest.kernelRelease,
    agentSha256: manifest.agentSha256,
    bootSha256: createHash('sha256').update(hashes.slice(0, 2).join(':')).digest('hex'),
  };
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
