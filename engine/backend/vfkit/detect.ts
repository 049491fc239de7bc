import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { VfkitHostFacts } from './host';

/** How long each probe command may take (sw_vers, uname, vfkit --version). */
const PROBE_TIMEOUT_MS = 5000;

/**
 * The facts decideVfkitHost needs, from this host: `sw_vers`, `uname` and `vfkit` as `env`'s
 * PATH finds them (tests put fakes there). Nothing is run but on macOS.
 */
export async function gatherVfkitHostFacts(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): Promise<VfkitHostFacts> {
  if (platform !== 'darwin') return { platform };
  const run = (command: string, args: string[]) => output(command, args, env);
  const [macosVersion, machine] = await Promise.all([run('sw_vers', ['-productVersion']), run('uname', ['-m'])]);
  const binary = findVfkit(env);
  const versionOutput = binary ? await run(binary, ['--version']) : undefined;
  return {
    platform,
    ...(macosVersion ? { macosVersion: macosVersion.trim() } : {}),
    ...(machine ? { machine: machine.trim() } : {}),
    ...(binary && versionOutput !== undefined ? { vfkit: { path: binary, versionOutput } } : {}),
  };
}

/** MICROVM_VFKIT, else the first `vfkit` on PATH (Homebrew puts it in /opt/homebrew/bin or /usr/local/bin). */
export function findVfkit(env: NodeJS.ProcessEnv): string | undefined {
  if (env.MICROVM_VFKIT) return env.MICROVM_VFKIT;
  const dirs = [...(env.PATH ?? '').split(path.delimiter), '/opt/homebrew/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'vfkit');
    if (dir && isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** A command's stdout (and stderr, where vfkit may print), or undefined when it could not run. */
function output(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: PROBE_TIMEOUT_MS, env }, (err, stdout, stderr) =>
      resolve(err ? undefined : `${stdout}${stderr}`),
    );
  });
}
