import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MicrovmError } from '../errors';

const run = promisify(execFile);
const MAX_BYTES = 1024 * 1024;

/**
 * A small file of a root disk the engine built (mke2fs from the image's layers), read with
 * `debugfs cat` without booting: the image's /etc/passwd, say, to know its users before a
 * VM starts. The file system is ours; only its file contents come from the image. Undefined
 * when the file does not exist.
 */
export async function readDiskFile(disk: string, file: string): Promise<string | undefined> {
  if (!/^\/[\w./-]+$/.test(file) || file.includes('..'))
    throw new MicrovmError(
      'E_BAD_OPTION',
      `cannot read ${JSON.stringify(file)} from a root disk: a plain absolute path is needed`,
    );
  try {
    const { stdout, stderr } = await run('debugfs', ['-R', `cat ${file}`, disk], {
      maxBuffer: MAX_BYTES,
      encoding: 'utf8',
    });
    return /File not found|not found by ext2_lookup/.test(stderr) ? undefined : stdout;
  } catch (err) {
    throw new MicrovmError(
      'E_ROOTFS_BUILD',
      `cannot read ${file} from the root disk ${disk}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
