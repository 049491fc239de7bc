import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../helpers/free-port';

/** The newest code-server line that runs on Node 20. */
export const CODE_SERVER_VERSION = '4.100.3';
const RIPGREP_CACHE = 'vscode-ripgrep-cache-1.15.11';
const RIPGREP_TARBALL = 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz';

const home = process.env.MICROVM_HOME || path.join(os.homedir(), '.cache', 'microvm');
const installDir = path.join(home, 'e2e', `code-server-${CODE_SERVER_VERSION}`);
const entry = path.join(installDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

/** A scratch directory holding every bit of code-server and chromium state (XDG_*, TMPDIR). */
export interface Scratch {
  root: string;
  env: NodeJS.ProcessEnv;
  userDataDir: string;
  extensionsDir: string;
}

export function makeScratch(): Scratch {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-e2e-'));
  const names = ['config', 'data', 'cache', 'state', 'runtime', 'tmp', 'user-data', 'extensions'] as const;
  const dirs = Object.fromEntries(
    names.map((d) => {
      const dir = path.join(root, d);
      fs.mkdirSync(dir, { mode: 0o700 });
      return [d, dir];
    }),
  ) as Record<(typeof names)[number], string>;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The engine keeps using the real cache (kernel, images, snapshots): only editor state is scratch.
    MICROVM_HOME: home,
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    XDG_STATE_HOME: dirs.state,
    XDG_RUNTIME_DIR: dirs.runtime,
    TMPDIR: dirs.tmp,
  };
  return { root, env, userDataDir: dirs['user-data'], extensionsDir: dirs.extensions };
}

/**
 * Installs code-server from the npm registry once (cached under $MICROVM_HOME/e2e). Its
 * @vscode/ripgrep step would download rg from GitHub; a tarball of Debian's rg placed in its
 * cache first is used instead.
 */
export function ensureCodeServer(log: (line: string) => void): string {
  if (fs.existsSync(entry)) return entry;
  log(`installing code-server ${CODE_SERVER_VERSION} into ${installDir} (once)`);
  const rg = execFileSync('sh', ['-c', 'command -v rg'], { encoding: 'utf8' }).trim();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-e2e-install-'));
  try {
    const cache = path.join(tmp, RIPGREP_CACHE);
    fs.mkdirSync(cache);
    fs.copyFileSync(rg, path.join(tmp, 'rg'));
    execFileSync('tar', ['-czf', path.join(cache, RIPGREP_TARBALL), '-C', tmp, 'rg']);
    fs.rmSync(installDir, { recursive: true, force: true });
    fs.mkdirSync(installDir, { recursive: true });
    // npm 11 runs dependency install scripts only when allowed; code-server's postinstall builds its VS Code.
    fs.writeFileSync(
      path.join(installDir, 'package.json'),
      JSON.stringify({ private: true, name: 'microvm-e2e-code-server', allowScripts: { 'code-server': true } }),
    );
    execFileSync('npm', ['install', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`], {
      cwd: installDir,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, TMPDIR: tmp, npm_config_unsafe_perm: 'true', npm_config_yes: 'true' },
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!fs.existsSync(entry)) throw new Error(`code-server install finished without ${entry}`);
  return entry;
}

export function installExtension(scratch: Scratch, vsix: string): void {
  execFileSync(
    process.execPath,
    [
      entry,
      '--user-data-dir',
      scratch.userDataDir,
      '--extensions-dir',
      scratch.extensionsDir,
      '--install-extension',
      vsix,
      '--force',
    ],
    {
      env: scratch.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
}

export function writeUserSettings(scratch: Scratch, settings: Record<string, unknown>): void {
  const dir = path.join(scratch.userDataDir, 'User');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(settings, null, 2));
}

export interface RunningServer {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export async function startCodeServer(scratch: Scratch): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      entry,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-getting-started-override',
      '--user-data-dir',
      scratch.userDataDir,
      '--extensions-dir',
      scratch.extensionsDir,
    ],
    { env: scratch.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () =>
      await fetch(url).then(
        (r) => r.status < 500,
        () => false,
      ),
    60_000,
    () => `code-server did not answer on ${url}:\n${output}`,
  );
  return {
    url,
    process: child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // The whole process group: code-server, its extension host, and the VM launcher under it.
      process.kill(-(child.pid as number), 'SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(message());
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
