import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DEFAULT_PROTECT,
  Image,
  MIRRORS_ENV,
  openWorkspace,
  type PlanSettings,
  prepareWorkspace,
  recordFile,
  removeVolume,
  Session,
  type SessionEvents,
} from '../../engine';
import { engineHome } from '../engine-home';
import { pushComposeImages } from '../../test/helpers/compose-images';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry-server';
import { CLIENT_JS } from './compose-client';

/**
 * The compose rows' workspaces, as test/vm/compose.test.ts makes them: an app service (node)
 * that is the workspace VM and a db service (Debian's redis-server, a named volume, a health
 * check the app waits for), both images one mmdebstrap'd Debian layer with nodejs and
 * redis-server served by a loopback registry as docker.io/library/node and .../redis; and the
 * baseline, a single-VM workspace of the same node image without compose.
 */
export const SETTINGS: PlanSettings = {
  image: '',
  memoryMib: 512,
  cpus: 1,
  network: 'outbound',
  symlinks: 'opaque',
  protect: [...DEFAULT_PROTECT],
  git: 'writable',
};
export const APP_IMAGE = 'docker.io/library/node:22-bookworm';
export const DB_IMAGE = 'docker.io/library/redis:7-bookworm';
export const CLIENT_FILE = 'compose-client.js';

const COMPOSE_YML = [
  'services:',
  '  app:',
  '    image: node:22-bookworm',
  '    volumes: ["../..:/workspaces:cached"]',
  '    command: sleep infinity',
  '    depends_on: { db: { condition: service_healthy } }',
  '  db:',
  '    image: redis:7-bookworm',
  '    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]',
  '    volumes: ["redisdata:/data"]',
  '    expose: ["6379"]',
  // As much guest RAM as the app's workspace VM (SETTINGS.memoryMib), so the RAM row is per VM of either kind.
  `    mem_limit: ${SETTINGS.memoryMib}m`,
  '    healthcheck: { test: ["CMD-SHELL", "redis-cli ping | grep -q PONG"], interval: 1s, retries: 30 }',
  'volumes: { redisdata: {} }',
].join('\n');

export interface ComposeBench {
  tmp: string;
  /** A new folder (its own workspace record and volumes): compose or single-VM. */
  folder(kind: 'compose' | 'single'): string;
  /** Image.build (pull and root disk, no snapshot) of both images before any open, in ms: a cache hit after the first run. */
  imagesMs: number;
  /** Stops the registry, removes every folder with its record and volumes. */
  close(): Promise<void>;
}

export async function composeBench(log: (line: string) => void): Promise<ComposeBench> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-compose-'));
  fs.chmodSync(tmp, 0o755);
  const savedMirrors = process.env[MIRRORS_ENV];
  const folders: string[] = [];
  let registry: TestRegistry | undefined;
  const close = async () => {
    await registry?.stop();
    if (savedMirrors === undefined) delete process.env[MIRRORS_ENV];
    else process.env[MIRRORS_ENV] = savedMirrors;
    for (const folder of folders) await forgetWorkspace(folder);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    registry = await startRegistry(path.join(tmp, 'registry'));
    await pushComposeImages(registry.base);
    process.env[MIRRORS_ENV] = `docker.io=${registry.base}`;
    const started = performance.now();
    for (const ref of [APP_IMAGE, DB_IMAGE]) await Image.build({ ref, snapshot: false });
    const imagesMs = performance.now() - started;
    log(`compose: images pulled and root disks built in ${imagesMs.toFixed(0)} ms`);
    return {
      tmp,
      imagesMs,
      close,
      folder: (kind) => {
        const folder = path.join(tmp, `${kind}-${folders.length}`);
        fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
        fs.writeFileSync(path.join(folder, CLIENT_FILE), CLIENT_JS);
        const common = { workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}', userEnvProbe: 'none' };
        const config =
          kind === 'compose'
            ? { dockerComposeFile: 'docker-compose.yml', service: 'app', forwardPorts: ['db:6379'], ...common }
            : { image: 'node:22-bookworm', ...common };
        fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
        if (kind === 'compose') fs.writeFileSync(path.join(folder, '.devcontainer', 'docker-compose.yml'), COMPOSE_YML);
        folders.push(folder);
        return folder;
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** prepareWorkspace + Session.start, as the extension opens a folder; the result is timed by the caller. */
export async function openSession(folder: string): Promise<Session> {
  const prepared = await prepareWorkspace({
    folder,
    settings: SETTINGS,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  if (!prepared) throw new Error(`bench: ${folder} did not prepare`);
  const errors = prepared.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new Error(`bench: ${folder}: ${JSON.stringify(errors)}`);
  const session = new Session(prepared.plan, quietEvents(), prepared.lifecycle);
  try {
    await session.start();
  } catch (err) {
    await session.stop().catch(() => undefined);
    throw err;
  }
  return session;
}

function quietEvents(): SessionEvents {
  return {
    log: () => undefined,
    baking: () => undefined,
    booting: () => undefined,
    portsChanged: () => undefined,
    exited: (error) => process.stderr.write(`bench: compose: a VM exited: ${error.message}\n`),
    output: () => undefined,
    hookFailed: () => undefined,
  };
}

/** The folder's workspace record, its services' logs and its volumes (`ws-<id>-*`, `wsroot-<id>`), as if it was never opened. */
async function forgetWorkspace(folder: string): Promise<void> {
  if (!fs.existsSync(folder) || !fs.existsSync(recordFile(folder))) return;
  const { id } = openWorkspace(folder);
  const logs = path.basename(recordFile(folder)).replace(/\.json$/, '.service-');
  for (const file of fs.readdirSync(engineHome.workspaces())) {
    if (file.startsWith(logs)) fs.rmSync(path.join(engineHome.workspaces(), file), { force: true });
  }
  const names = fs.existsSync(engineHome.volumes()) ? fs.readdirSync(engineHome.volumes()) : [];
  for (const file of names) {
    const name = file.replace(/\.ext4$/, '');
    if (file.endsWith('.ext4') && (name.startsWith(`ws-${id}-`) || name === `wsroot-${id}`)) await removeVolume(name);
  }
  fs.rmSync(recordFile(folder), { force: true });
}
