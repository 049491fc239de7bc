import * as fs from 'node:fs';
import * as path from 'node:path';
import { microvmHome } from '../../engine/paths';
import { debianArm64Image } from './debian-arm64';
import { indexOf, type Blob } from './image-fixtures';

/**
 * The guest architecture the parameterised VM suites run on: `MICROVM_TEST_ARCH=aarch64`
 * (`npm run test:arm64`) runs them on the arm64 Debian image as aarch64 guests; unset (or
 * `x86_64`), on the embedded default image.
 */
export type TestArch = 'x86_64' | 'aarch64';

export function testArch(): TestArch {
  const arch = process.env.MICROVM_TEST_ARCH ?? 'x86_64';
  if (arch !== 'x86_64' && arch !== 'aarch64') {
    throw new Error(`MICROVM_TEST_ARCH ${JSON.stringify(arch)} is not a test architecture; use x86_64 or aarch64`);
  }
  return arch;
}

/** Spread into Image.build's options: `{}` (the default image) or the arm64 image's layout as `ref`. */
export function testImage(): { ref?: string } {
  if (testArch() === 'x86_64') return {};
  layout ??= debianArm64Layout();
  return { ref: layout };
}

let layout: string | undefined;

/**
 * The arm64 Debian image (test/helpers/debian-arm64.ts) as an OCI layout under
 * $MICROVM_HOME/test-images, named by its manifest digest: written once, then reused, so no
 * registry runs per test file. Its index entry names no platform, so the engine takes the one
 * manifest as it is and its config's `arm64` picks the aarch64 guest.
 */
function debianArm64Layout(): string {
  const image = debianArm64Image();
  const dir = path.join(microvmHome(), 'test-images', `debian-arm64-layout-${image.manifest.digest.slice(7, 23)}`);
  if (fs.existsSync(path.join(dir, 'index.json'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmp, 'blobs', 'sha256'), { recursive: true });
  const write = (blob: Blob) => fs.writeFileSync(path.join(tmp, 'blobs', 'sha256', blob.digest.slice(7)), blob.data);
  [image.config, image.manifest, ...image.layers].forEach(write);
  fs.writeFileSync(path.join(tmp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(tmp, 'index.json'), indexOf([{ manifest: image.manifest }]).data);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return dir;
}
