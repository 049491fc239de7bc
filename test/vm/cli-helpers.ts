import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { after } from 'node:test';

/** Where scripts/setup put the kernel, the default image and the root disk cache. */
export const realHome = process.env.MICROVM_HOME || path.join(os.homedir(), '.cache', 'microvm');

export interface Bundles {
  cli: string;
  engine: string;
  dir: string;
}

// Whatever bundled last, no esbuild service outlives a test file that uses these helpers.
after(() => esbuild.stop());

/**
 * Bundles the CLI and the engine as esbuild.mjs does, but into a private directory: other
 * builds of dist/ running at the same time cannot swap the files under a test.
 */
export async function buildBundles(): Promise<Bundles> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bundle-'));
  const root = path.join(__dirname, '..', '..');
  // mainFields as in esbuild.mjs: jsonc-parser's "main" is a UMD build that requires its files at run time.
  const common: esbuild.BuildOptions = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
    absWorkingDir: root,
    mainFields: ['module', 'main'],
  };
  const bundles = { cli: path.join(dir, 'cli.js'), engine: path.join(dir, 'engine.js'), dir };
  await Promise.all([
    esbuild.build({ ...common, entryPoints: ['engine/cli/main.ts'], outfile: bundles.cli }),
    esbuild.build({ ...common, entryPoints: ['engine/index.ts'], outfile: bundles.engine }),
  ]);
  // esbuild's service process can stay referenced after the builds (seen: a test file that
  // finished its tests and never exited); stop it, a later build starts another.
  await esbuild.stop();
  return bundles;
}

/**
 * A private MICROVM_HOME holding links to the chosen parts of the real one, so run/ (and
 * what a test breaks) stays the test's own. The accelerator verdict is copied so no test
 * pays for a KVM probe.
 */
export function privateHome(parts: string[]): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mvh-'));
  for (const part of parts) {
    // A fresh machine may not have made the shared part yet; the link must not dangle.
    fs.mkdirSync(path.join(realHome, part), { recursive: true });
    fs.symlinkSync(path.join(realHome, part), path.join(home, part));
  }
  const accel = path.join(realHome, 'accel.json');
  if (fs.existsSync(accel)) fs.copyFileSync(accel, path.join(home, 'accel.json'));
  return home;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** How long one CLI command of a test may run (a cold `up` with builds takes a few minutes under TCG). */
const CLI_TIMEOUT_MS = 300_000;

/** Runs `node CLI ARGS...` to the end, feeding `input` (or nothing) to its stdin. */
export function runCli(
  cli: string,
  args: string[],
  options: { env?: Record<string, string>; input?: Buffer | string; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, ...options.env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    // A command that hangs fails its test with what it printed, instead of the whole file
    // timing out with nothing to go on.
    const timeoutMs = options.timeoutMs ?? CLI_TIMEOUT_MS;
    const timer = setTimeout(() => {
      stderr.push(Buffer.from(`\n[test: microvm ${args.join(' ')} still ran after ${timeoutMs} ms; killed]\n`));
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('close', () => clearTimeout(timer));
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
  });
}

/** Polls until `check` is true or `ms` have passed; returns the last answer. */
export async function waitFor(check: () => boolean, ms: number, every = 50): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, every));
  }
  return true;
}
