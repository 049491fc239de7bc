import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Image, removeVolume, serviceLinkAddress, type VmOf as Vm } from '../../engine';
import { ServiceRelay } from '../../engine/workspace/services/relay';
import { createStateDir } from '../../engine/vm/state-dir';
import { qemuUser } from '../../engine/qemu/run-as';
import { nodeImageLayout } from '../../test/helpers/host-tools-image';
import { startNpmRegistryOf } from '../../test/helpers/npm-registry';
import { GroupResult } from '../types';
import { EXPRESS_PACKAGES, writeExpressProject } from './express-project';

/** Where the guest reaches the host's registry: a service link (the guest has no other network). */
const REGISTRY_LINK = { address: serviceLinkAddress(0), port: 4873 };
const NPM_TIMEOUT_MS = 600_000;
/** Cleans the project for a cold install: the volume's content, the lockfile, npm's cache. */
const CLEAN = 'rm -rf node_modules/* node_modules/.package-lock.json package-lock.json .npm-cache';
const INSTALL = 'npm install --cache .npm-cache --loglevel=error';
const TEST = 'npm test --silent';
/** The project copied onto the guest's /tmp (a tmpfs), without node_modules, lockfile or cache. */
const TMPFS_PROJECT = '/tmp/express';
const COPY_TO_TMPFS = `rm -rf ${TMPFS_PROJECT} && mkdir ${TMPFS_PROJECT} && cp -r package.json .npmrc app.js test ${TMPFS_PROJECT}/`;

/**
 * The daily loop of a node project: `npm install` then `npm test` of a small express-like app
 * (bench/rows/express-project.ts) from a registry on the host's loopback, in a workspace VM
 * (q35, source on the folder mount, node_modules on a volume over it) against the same on the
 * host in the same run, alternating; and in the same VM on a copy in its tmpfs, which
 * separates the mount's and the volume's cost from the guest CPU's. Each sample is a cold
 * install: no node_modules, no lockfile, an empty npm cache.
 */
export async function measureExpress(runs: number, log: (line: string) => void): Promise<GroupResult> {
  const registry = await startNpmRegistryOf(EXPRESS_PACKAGES);
  const guestProject = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-express-'));
  const hostProject = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-express-host-'));
  fs.chmodSync(guestProject, 0o755);
  writeExpressProject(guestProject, `http://${REGISTRY_LINK.address}:${REGISTRY_LINK.port}/`);
  writeExpressProject(hostProject, `http://127.0.0.1:${registry.port}/`);
  const volume = `bench-express-${process.pid}`;
  // The link's unix socket (in a private run directory, as a compose workspace's relays), piped to the registry's port.
  const linkDir = createStateDir(qemuUser());
  const link = ServiceRelay.in(linkDir.dir, 'registry', REGISTRY_LINK.port, 0, qemuUser());
  await link.setTarget(async (socket) => {
    const upstream = net.connect(registry.port, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.resume();
    await new Promise<void>((resolve) => {
      const end = () => {
        socket.destroy();
        upstream.destroy();
        resolve();
      };
      for (const s of [socket, upstream]) s.on('error', end).on('close', end);
    });
  });
  const samples = {
    guestInstall: [] as number[],
    guestTest: [] as number[],
    tmpfsInstall: [] as number[],
    tmpfsTest: [] as number[],
    hostInstall: [] as number[],
    hostTest: [] as number[],
  };
  let vm: Vm | undefined;
  try {
    const image = await Image.build({
      ref: nodeImageLayout(),
      network: 'none',
      serviceLinks: [{ ...REGISTRY_LINK, path: link.path }],
      memoryMib: 768,
      mounts: [{ hostPath: guestProject, guestPath: '/workspace' }],
      volumes: [{ name: volume, sizeMib: 256, mountPoint: '/workspace/node_modules' }],
    });
    vm = await image.workspaceVm();
    const inGuest = async (script: string, cwd = '/workspace'): Promise<number> => {
      const started = performance.now();
      const result = await (vm as Vm).exec({
        argv: ['sh', '-c', script],
        cwd,
        timeoutMs: NPM_TIMEOUT_MS,
      });
      if (result.exitCode !== 0)
        throw new Error(`bench: ${script} in the guest exited ${result.exitCode}: ${result.stdout}${result.stderr}`);
      return performance.now() - started;
    };
    for (let i = 0; i < runs; i++) {
      const onMount = async () => {
        await inGuest(CLEAN);
        samples.guestInstall.push(await inGuest(INSTALL));
        samples.guestTest.push(await inGuest(TEST));
      };
      // The same in the guest with no mount or volume: what the guest's CPU (TCG here) costs alone.
      const onTmpfs = async () => {
        await inGuest(COPY_TO_TMPFS);
        samples.tmpfsInstall.push(await inGuest(INSTALL, TMPFS_PROJECT));
        samples.tmpfsTest.push(await inGuest(TEST, TMPFS_PROJECT));
      };
      // Each goes first every other sample, so neither always finds the guest's caches warmer.
      for (const run of i % 2 === 0 ? [onMount, onTmpfs] : [onTmpfs, onMount]) await run();
      fs.rmSync(path.join(hostProject, 'node_modules'), { recursive: true, force: true });
      fs.rmSync(path.join(hostProject, 'package-lock.json'), { force: true });
      fs.rmSync(path.join(hostProject, '.npm-cache'), { recursive: true, force: true });
      samples.hostInstall.push(await onHost(hostProject, ['install', '--cache', '.npm-cache', '--loglevel=error']));
      samples.hostTest.push(await onHost(hostProject, ['test', '--silent']));
      log(
        `express ${i + 1}/${runs}: guest install ${samples.guestInstall[i]?.toFixed(0)} ms + test ${samples.guestTest[i]?.toFixed(0)} ms, ` +
          `guest tmpfs ${samples.tmpfsInstall[i]?.toFixed(0)} + ${samples.tmpfsTest[i]?.toFixed(0)} ms, ` +
          `host ${samples.hostInstall[i]?.toFixed(0)} + ${samples.hostTest[i]?.toFixed(0)} ms`,
      );
    }
    // The packages are on the volume: nothing of them reaches the host folder.
    if (fs.existsSync(path.join(guestProject, 'node_modules')))
      throw new Error('bench: the guest install wrote node_modules into the host folder');
  } finally {
    await vm?.release();
    await link.close();
    linkDir.remove();
    registry.close();
    await removeVolume(volume).catch(() => undefined);
    fs.rmSync(guestProject, { recursive: true, force: true });
    fs.rmSync(hostProject, { recursive: true, force: true });
  }
  const sum = (a: number[], b: number[]) => a.map((x, i) => x + (b[i] ?? 0));
  const guestTotal = sum(samples.guestInstall, samples.guestTest);
  const hostTotal = sum(samples.hostInstall, samples.hostTest);
  const tmpfsTotal = sum(samples.tmpfsInstall, samples.tmpfsTest);
  const series = (name: string, values: number[]) => ({ name, unit: 'ms' as const, better: 'lower' as const, values });
  // One series object for a baseline that two rows share: the report lists its samples once.
  const onHostTotal = series('express install + test on the host', hostTotal);
  return {
    measurements: [
      {
        ours: series('express npm install (workspace VM: mount + volume)', samples.guestInstall),
        baseline: series('express npm install on the host', samples.hostInstall),
      },
      {
        ours: series('express npm test (workspace VM: mount + volume)', samples.guestTest),
        baseline: series('express npm test on the host', samples.hostTest),
      },
      {
        ours: series('express install + test (workspace VM: mount + volume)', guestTotal),
        baseline: onHostTotal,
      },
      {
        ours: series('express install + test (workspace VM: its tmpfs, no mount)', tmpfsTotal),
        baseline: onHostTotal,
      },
      {
        ours: series('express install + test, mount + volume against the guest tmpfs', guestTotal),
        baseline: series('express install + test in the same VM on its tmpfs', tmpfsTotal),
      },
    ],
    notes: [
      `express: a small express-like app (${EXPRESS_PACKAGES.length} packages from a loopback registry, a node --test suite of 3 HTTP tests); ` +
        'each sample a cold npm install (no node_modules, lockfile or cache) then npm test, in a 768 MiB q35 workspace VM with the source on the ' +
        'folder mount and node_modules on a volume (the registry over a service link), against the same commands on the host, alternating; ' +
        'and in the same VM on a copy of the project in its /tmp (a tmpfs: no mount, no volume), which separates what the mount and volume cost from what the emulated guest CPU costs.',
    ],
  };
}

/** Runs npm on the host in `cwd`; resolves to its duration in ms, rejects on a failure. */
function onHost(cwd: string, args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) =>
    execFile('npm', args, { cwd, timeout: NPM_TIMEOUT_MS }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`bench: npm ${args.join(' ')} on the host failed: ${stdout}${stderr}`))
        : resolve(performance.now() - started),
    ),
  );
}
