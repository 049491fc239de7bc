import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Image } from '../../engine';
import { volumeFile } from '../../engine/mount';
import { nodeImageLayout } from '../helpers/host-tools-image';

/**
 * The npm pattern: the project on a virtio-fs mount, node_modules on a volume mounted over
 * a path inside it, and a real `npm install` from the npm registry in the warmup.
 */
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-npm-'));
const volume = `npm-${randomBytes(4).toString('hex')}`;
const hostCa = process.env.NODE_EXTRA_CA_CERTS;

after(() => {
  fs.rmSync(project, { recursive: true, force: true });
  fs.rmSync(volumeFile(volume), { force: true });
});

test('npm install in the guest puts node_modules on the volume over the mount', async () => {
  fs.chmodSync(project, 0o755);
  fs.writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({
      name: 'p',
      version: '1.0.0',
      private: true,
      dependencies: { 'is-number': '7.0.0', 'left-pad': '1.3.0' },
    }),
  );
  fs.writeFileSync(
    path.join(project, 'index.js'),
    "console.log(require('is-number')(5), require('left-pad')('x', 3));\n",
  );
  let installMs = 0;
  const image = await Image.build({
    ref: nodeImageLayout(),
    network: 'outbound',
    memoryMib: 512,
    // Where the host reaches the registry through a TLS-intercepting proxy, the guest needs its CA too.
    ...(hostCa
      ? {
          extraFiles: [{ hostPath: hostCa, guestPath: '/etc/ssl/certs/host-ca.pem' }],
          env: { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/host-ca.pem' },
        }
      : {}),
    mounts: [{ hostPath: project, guestPath: '/workspace' }],
    volumes: [{ name: volume, sizeMib: 256, mountPoint: '/workspace/node_modules' }],
    warmup: async (vm) => {
      const started = Date.now();
      const result = await vm.exec({
        argv: ['npm', 'install', '--no-audit', '--no-fund'],
        cwd: '/workspace',
        timeoutMs: 240_000,
      });
      installMs = Date.now() - started;
      assert.equal(result.exitCode, 0, result.stderr);
    },
  });
  // Mounted images boot fresh and run the warmup on each boot: the acquire waits for npm install.
  const pool = image.pool({ min: 0, max: 1, acquireTimeoutMs: 300_000 });
  const vm = await pool.acquire();
  try {
    console.log(`npm install in the guest: ${installMs} ms`);
    const run = await vm.exec({ argv: ['node', 'index.js'], cwd: '/workspace' });
    assert.equal(run.stdout, 'true   x\n', run.stderr);
    const mounts = (await vm.exec({ argv: ['cat', '/proc/mounts'] })).stdout;
    assert.match(mounts, /\/workspace virtiofs/);
    assert.match(mounts, /\/workspace\/node_modules ext4/);
    // The packages live on the volume: nothing reaches the host folder, not even the mount point.
    assert.equal(fs.existsSync(path.join(project, 'node_modules')), false);
    assert.ok(fs.existsSync(path.join(project, 'package-lock.json')));
  } finally {
    await vm.release();
    await pool.shutdown();
  }
});
