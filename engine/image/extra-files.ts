import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { MicrovmError } from '../errors';

/** A host file copied into every VM of an image, at VM start. */
export interface ExtraFile {
  guestPath: string;
  data: Buffer;
  mode: number;
}

const MAX_EXTRA_FILE_BYTES = 64 * 1024 * 1024;

/** Reads the host files now, so the image holds exactly what its cache key was computed from. */
export async function readExtraFiles(
  specs: Array<{ hostPath: string; guestPath: string; mode?: number }>,
): Promise<ExtraFile[]> {
  const files: ExtraFile[] = [];
  for (const spec of specs) {
    const stat = await fs.stat(spec.hostPath).catch((err: Error) => {
      throw new MicrovmError(
        'E_FILE_NOT_FOUND',
        `extraFiles: cannot read ${spec.hostPath}: ${err.message}; fix the hostPath`,
        { cause: err },
      );
    });
    if (!stat.isFile())
      throw new MicrovmError(
        'E_BAD_OPTION',
        `extraFiles: ${spec.hostPath} is not a regular file; copy a file, not a directory`,
      );
    if (stat.size > MAX_EXTRA_FILE_BYTES) {
      throw new MicrovmError(
        'E_FILE_TOO_LARGE',
        `extraFiles: ${spec.hostPath} is ${stat.size} bytes, over the ${MAX_EXTRA_FILE_BYTES}-byte limit; use a mount or a volume for large data`,
      );
    }
    const data = await fs.readFile(spec.hostPath);
    files.push({ guestPath: spec.guestPath, data, mode: spec.mode ?? stat.mode & 0o7777 });
  }
  return files;
}

/**
 * The image's cache key: the layer chain (through the root disk), the image config and the
 * VM settings, plus each extra file's guest path, mode and contents, so that editing a host
 * file gives a different key.
 */
export function imageKey(parts: {
  rootDisk: string;
  configDigest: string;
  settings: unknown;
  extraFiles: ExtraFile[];
}): string {
  const hash = createHash('sha256').update('microvm-image-v1\n');
  hash.update(`${parts.rootDisk}\n${parts.configDigest}\n${JSON.stringify(parts.settings)}\n`);
  for (const file of parts.extraFiles) {
    hash.update(`${file.guestPath}\n${file.mode}\n${createHash('sha256').update(file.data).digest('hex')}\n`);
  }
  return hash.digest('hex');
}
