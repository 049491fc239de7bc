import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Every location under $MICROVM_HOME, in one place. scripts/setup writes the assets/ and
 * images/default/ parts with the same names.
 */
export function microvmHome(): string {
  return process.env.MICROVM_HOME || path.join(os.homedir(), '.cache', 'microvm');
}

export const homePaths = {
  assetsDir: () => path.join(microvmHome(), 'assets'),
  kernel: () => path.join(microvmHome(), 'assets', 'vmlinuz'),
  initrd: () => path.join(microvmHome(), 'assets', 'initrd.cpio'),
  assetsManifest: () => path.join(microvmHome(), 'assets', 'manifest.json'),
  launcher: () => path.join(microvmHome(), 'assets', 'bin', 'microvm-launch'),
  defaultImage: () => path.join(microvmHome(), 'images', 'default'),
  rootfsCache: () => path.join(microvmHome(), 'rootfs'),
  runDir: () => path.join(microvmHome(), 'run'),
  accelCache: () => path.join(microvmHome(), 'accel.json'),
};
