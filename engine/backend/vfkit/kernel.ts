import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MicrovmError } from '../../errors';
import { tempPath } from '../../temp-files';

/** An uncompressed arm64 kernel is tens of MiB; more than this from a gzip stream is not a kernel. */
const MAX_KERNEL_BYTES = 256 * 1024 * 1024;

/** How a kernel file is packed, from its first bytes. */
export function kernelPacking(head: Buffer): 'gzip' | 'efi-zboot' | 'plain' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  // EFI zboot (CONFIG_EFI_ZBOOT): a PE header "MZ" with "zimg" at offset 4.
  if (head.subarray(0, 2).toString('latin1') === 'MZ' && head.subarray(4, 8).toString('latin1') === 'zimg')
    return 'efi-zboot';
  return 'plain';
}

/**
 * The kernel as vfkit's Linux bootloader can boot it: on Apple silicon Virtualization.framework
 * takes only an uncompressed arm64 Image, and Debian ships it gzip'd (vmlinuz). The unpacked
 * Image is cached in `cacheDir` by the packed file's sha256, written whole before its rename.
 */
export async function uncompressedKernel(kernel: string, cacheDir: string): Promise<string> {
  const data = await fs.readFile(kernel);
  const packing = kernelPacking(data.subarray(0, 8));
  if (packing === 'plain') return kernel;
  if (packing === 'efi-zboot') {
    throw new MicrovmError(
      'E_SETUP_MISSING',
      `${kernel} is an EFI zboot image, which vfkit's Linux bootloader cannot start; use a kernel package that ships a gzip'd or plain Image`,
    );
  }
  const target = path.join(cacheDir, `${createHash('sha256').update(data).digest('hex')}.Image`);
  if (await fs.stat(target).catch(() => null)) return target;
  let image: Buffer;
  try {
    image = gunzipSync(data, { maxOutputLength: MAX_KERNEL_BYTES });
  } catch (err) {
    throw new MicrovmError('E_SETUP_MISSING', `${kernel} is not a readable gzip'd kernel; run the setup again`, {
      cause: err,
    });
  }
  await fs.mkdir(cacheDir, { recursive: true, mode: 0o755 });
  const temp = tempPath(cacheDir);
  try {
    await fs.writeFile(temp, image, { mode: 0o644 });
    await fs.rename(temp, target);
  } finally {
    await fs.rm(temp, { force: true });
  }
  return target;
}
