// JSON writing for scripts/setup (node is always there; python may not be).
//
//   node setup-helper.mjs oci-layout OUTDIR LAYER.tar LAYER.tar.gz PKGS [NAME]
//       write an OCI image layout (oci-layout, index.json, blobs/sha256/...)
//       with one gzip layer, an image config and a manifest; ref name NAME ("default").
//   node setup-helper.mjs manifest-digest LAYOUTDIR [NAME]
//   node setup-helper.mjs manifest ASSETS LAYOUTDIR RELEASE KPKG AGENT COMPRESSION MODULES
//       write ASSETS/manifest.json (temp file + rename).
//   node setup-helper.mjs arch-manifest ASSETS ARCH RELEASE KPKG AGENT COMPRESSION MODULES
//       write ASSETS/ARCH/manifest.json: the guest assets of another architecture (aarch64),
//       its files named relative to ASSETS (ARCH/vmlinuz, ARCH/initrd.cpio, bin/microvm-launch).
//   node setup-helper.mjs stale-steps ASSETS LAYOUTDIR
//       print the setup steps whose outputs no longer match: 'kernel', 'initrd' or 'native'
//       for a file whose sha256 differs from ASSETS/manifest.json (or is gone), 'kernel-aarch64'
//       or 'initrd-aarch64' for ASSETS/aarch64/manifest.json, 'image' for a blob of the default
//       layout that is not what its name says. Nothing for a manifest that is not there.
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  writeFileSync,
  readFileSync,
  renameSync,
  statSync,
  copyFileSync,
} from 'node:fs';
import { join } from 'node:path';

const FIXED_CREATED = '1970-01-01T00:00:00Z';

function sha256File(path) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

function writeAtomic(path, data) {
  const tmp = `${path}.tmp.${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

async function ociLayout(out, tarPath, gzPath, pkgs, name = 'default') {
  const blobs = join(out, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const diffId = await sha256File(tarPath);
  const layerHex = await sha256File(gzPath);
  copyFileSync(gzPath, join(blobs, layerHex));
  const putJson = (obj) => {
    const buf = Buffer.from(JSON.stringify(obj));
    const hex = sha256(buf);
    writeFileSync(join(blobs, hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };
  const config = {
    created: FIXED_CREATED,
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/bash'],
      WorkingDir: '/root',
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [
      { created: FIXED_CREATED, created_by: `microvm setup: Debian packages ${pkgs.filter(Boolean).join(' ')}` },
    ],
  };
  const cfg = putJson(config);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: `sha256:${layerHex}`,
        size: statSync(gzPath).size,
      },
    ],
  };
  const man = putJson(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...man,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: { 'org.opencontainers.image.ref.name': name },
      },
    ],
  };
  writeFileSync(join(out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(out, 'index.json'), JSON.stringify(index));
}

function manifestDigest(layout, name = 'default') {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const m = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === name);
  if (!m) throw new Error(`${layout}: no manifest named "${name}"`);
  return m.digest;
}

async function assetsManifest(assets, layout, release, kpkg, agent, compression, modules) {
  const files = {};
  for (const name of ['vmlinuz', 'initrd.cpio', 'bin/microvm-launch']) {
    const p = join(assets, name);
    files[name] = { sha256: await sha256File(p), size: statSync(p).size };
  }
  const [name, version] = kpkg.split('=');
  const manifest = {
    schemaVersion: 1,
    kernelRelease: release,
    kernelPackage: name,
    kernelPackageVersion: version,
    files,
    agentSha256: await sha256File(agent),
    defaultImage: manifestDigest(layout),
    modules: modules.split(',').filter(Boolean),
    moduleCompression: compression,
    createdBy: 'scripts/setup',
  };
  writeAtomic(join(assets, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

async function archManifest(assets, arch, release, kpkg, agent, compression, modules) {
  const files = {};
  for (const name of [`${arch}/vmlinuz`, `${arch}/initrd.cpio`, 'bin/microvm-launch']) {
    const p = join(assets, name);
    files[name] = { sha256: await sha256File(p), size: statSync(p).size };
  }
  const [name, version] = kpkg.split('=');
  const manifest = {
    schemaVersion: 1,
    architecture: arch,
    kernelRelease: release,
    kernelPackage: name,
    kernelPackageVersion: version,
    files,
    agentSha256: await sha256File(agent),
    modules: modules.split(',').filter(Boolean),
    moduleCompression: compression,
    createdBy: 'scripts/setup',
  };
  writeAtomic(join(assets, arch, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** The setup step that writes each file a manifest records, by manifest. */
const STEP_OF = {
  'manifest.json': { vmlinuz: 'kernel', 'initrd.cpio': 'initrd', 'bin/microvm-launch': 'native' },
  'aarch64/manifest.json': { 'aarch64/vmlinuz': 'kernel-aarch64', 'aarch64/initrd.cpio': 'initrd-aarch64' },
};

async function staleSteps(assets, layout) {
  const stale = new Set();
  for (const [manifestName, steps] of Object.entries(STEP_OF)) {
    const manifestPath = join(assets, manifestName);
    if (!existsSync(manifestPath)) continue;
    const { files = {} } = JSON.parse(readFileSync(manifestPath, 'utf8'));
    for (const [name, step] of Object.entries(steps)) {
      const path = join(assets, name);
      if (!existsSync(path) || (await sha256File(path)) !== files[name]?.sha256) stale.add(step);
    }
  }
  if (!existsSync(join(assets, 'manifest.json'))) return [...stale];
  const blobs = join(layout, 'blobs', 'sha256');
  for (const name of existsSync(blobs) ? readdirSync(blobs) : []) {
    if ((await sha256File(join(blobs, name))) !== name) stale.add('image');
  }
  return [...stale];
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'oci-layout') await ociLayout(args[0], args[1], args[2], (args[3] ?? '').split(','), args[4]);
  else if (cmd === 'manifest-digest') console.log(manifestDigest(args[0], args[1]));
  else if (cmd === 'manifest') await assetsManifest(...args);
  else if (cmd === 'arch-manifest') await archManifest(...args);
  else if (cmd === 'stale-steps') for (const step of await staleSteps(args[0], args[1])) console.log(step);
  else throw new Error(`unknown command ${cmd}`);
} catch (e) {
  console.error(`setup-helper: ${e.message}`);
  process.exit(1);
}
