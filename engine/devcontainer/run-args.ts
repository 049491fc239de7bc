import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { formatPlatform, isPlatformText, parsePlatform } from '../image/platform';
import { Problems, quote } from './problems';

/** What `runArgs` (docker run flags) mean for a VM, where they mean anything. */
export interface RunArgsEffect {
  env: Record<string, string>;
  hosts: Array<{ name: string; address: string }>;
  publish: Array<{ hostPort: number; guestPort: number }>;
  memoryMib?: number;
  cpus?: number;
  user?: string;
  mounts: string[];
  /** `--platform`: which platform's manifest of the image to pull (normalized: `linux/arm64`). */
  platform?: string;
}

/** Flags the VM's root already has, or that name the container itself: said once, in the log. */
const MOOT = new Set([
  '--privileged',
  '--cap-add',
  '--cap-drop',
  '--security-opt',
  '--init',
  '--name',
  '--hostname',
  '-h',
  '--label',
  '-l',
  '--rm',
  '-it',
  '-i',
  '-t',
  '--interactive',
  '--tty',
  '--ipc',
  '--pid',
  '--shm-size',
  '--ulimit',
]);
const WITH_VALUE = new Set([
  '--cap-add',
  '--cap-drop',
  '--security-opt',
  '--name',
  '--hostname',
  '-h',
  '--label',
  '-l',
  '--ipc',
  '--pid',
  '--shm-size',
  '--ulimit',
  '--network',
  '--net',
  '--device',
  '--gpus',
  '--device-cgroup-rule',
  '--userns',
  '--runtime',
  '--dns',
  '--entrypoint',
  '-w',
  '--workdir',
]);

/**
 * Reads `runArgs`: `-e/--env` and `--env-file` (a file in the workspace) become container
 * environment, `--add-host` guest /etc/hosts entries, `-p/--publish` forwards, `--memory` and
 * `--cpus` resource requests (clamped later), `-u/--user` the container user, `-v/--mount`
 * mounts, `--platform` the image's platform; privileges and names are moot in a VM (info); the rest is reported and ignored.
 */
export function readRunArgs(args: string[], folder: string, problems: Problems): RunArgsEffect {
  const effect: RunArgsEffect = { env: {}, hosts: [], publish: [], mounts: [] };
  for (let i = 0; i < args.length; i++) {
    const at = `$.runArgs[${i}]`;
    const [flag, inline] = splitFlag(args[i]!);
    const takes =
      WITH_VALUE.has(flag) ||
      [
        '-e',
        '--env',
        '--env-file',
        '--add-host',
        '-p',
        '--publish',
        '-m',
        '--memory',
        '--cpus',
        '-u',
        '--user',
        '-v',
        '--volume',
        '--mount',
        '--platform',
      ].includes(flag);
    const value = inline ?? (takes ? args[++i] : undefined);
    if (takes && value === undefined) {
      problems.add('warning', 'run-arg', at, `${flag} has no value`, 'ignored');
      continue;
    }
    apply(flag, value ?? '', effect, folder, problems, at);
  }
  return effect;
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
  if (eq > 0) return [arg.slice(0, eq), arg.slice(eq + 1)];
  // `-e FOO=1` written as one word: the value without the space (docker would keep it in the name).
  if (/^-[epmuv].+/.test(arg)) return [arg.slice(0, 2), arg.slice(2).trimStart()];
  return [arg, undefined];
}

function apply(
  flag: string,
  value: string,
  effect: RunArgsEffect,
  folder: string,
  problems: Problems,
  at: string,
): void {
  switch (flag) {
    case '-e':
    case '--env':
      setEnv(value, effect, problems, at);
      return;
    case '--env-file':
      readEnvFile(value, folder, effect, problems, at);
      return;
    case '--add-host':
      addHost(value, effect, problems, at);
      return;
    case '-p':
    case '--publish': {
      const match = /^(?:(?:127\.0\.0\.1|localhost|0\.0\.0\.0):)?(\d{1,5})(?::(\d{1,5}))?(?:\/tcp)?$/.exec(value);
      if (match) effect.publish.push({ hostPort: Number(match[1]), guestPort: Number(match[2] ?? match[1]) });
      else problems.add('warning', 'run-arg', at, `--publish ${quote(value)} is not HOST:GUEST`, 'not forwarded');
      return;
    }
    case '-m':
    case '--memory': {
      const mib = memoryMib(value);
      if (mib) effect.memoryMib = mib;
      else problems.add('warning', 'run-arg', at, `--memory ${quote(value)} is not a size`, 'ignored');
      return;
    }
    case '--cpus': {
      const cpus = Math.ceil(Number(value));
      if (cpus >= 1) effect.cpus = cpus;
      return;
    }
    case '-u':
    case '--user':
      effect.user = value;
      return;
    case '-v':
    case '--volume':
    case '--mount':
      effect.mounts.push(flag === '--mount' ? value : volumeToMount(value));
      return;
    case '--platform':
      if (isPlatformText(value)) effect.platform = formatPlatform(parsePlatform(value));
      else problems.add('warning', 'run-arg', at, `--platform ${quote(value)} is not OS/ARCH[/VARIANT]`, 'ignored');
      return;
  }
  if (MOOT.has(flag))
    problems.add(
      'info',
      'run-arg-moot',
      at,
      `${flag} changes a container's privileges or identity`,
      'moot in a VM: its root already has every capability, inside the VM only',
    );
  else
    problems.add('warning', 'run-arg', at, `${flag}${value ? ` ${quote(value)}` : ''} has no meaning here`, 'ignored');
}

/**
 * `--add-host NAME:ADDRESS` (or `NAME=ADDRESS`, IPv6 in brackets or not) as a guest /etc/hosts
 * line. Docker's `host-gateway` stands for the host itself, which a VM does not reach.
 */
function addHost(value: string, effect: RunArgsEffect, problems: Problems, at: string): void {
  const [, name, written] = /^([^:=]+)[:=](.+)$/.exec(value) ?? [];
  const address = written?.replace(/^\[(.*)\]$/, '$1');
  if (name && address === 'host-gateway')
    problems.add(
      'warning',
      'run-arg',
      at,
      `--add-host ${quote(value)} points ${name} at this machine (Docker's host-gateway)`,
      `not added: services on this machine are out of the VM's reach; run the service in the workspace, or in a compose service the workspace reaches by name`,
    );
  else if (name && address && isIP(address)) effect.hosts.push({ name, address });
  else
    problems.add(
      'warning',
      'run-arg',
      at,
      `--add-host ${quote(value)} is not NAME:ADDRESS with an IP address`,
      'ignored: no /etc/hosts line for it',
    );
}

function setEnv(value: string, effect: RunArgsEffect, problems: Problems, at: string): void {
  const eq = value.indexOf('=');
  if (eq > 0) effect.env[value.slice(0, eq)] = value.slice(eq + 1);
  else
    problems.add(
      'warning',
      'run-arg',
      at,
      `-e ${quote(value)} takes its value from the host environment`,
      'not passed: host variables reach the VM only through ${localEnv:...} when allowed',
    );
}

/** `--env-file F`: a file in the workspace (never outside it), KEY=VALUE per line. */
function readEnvFile(file: string, folder: string, effect: RunArgsEffect, problems: Problems, at: string): void {
  const full = path.resolve(folder, file);
  let real: string;
  try {
    real = fs.realpathSync(full);
  } catch {
    problems.add('warning', 'run-arg', at, `--env-file ${quote(file)} does not exist`, 'no variables from it');
    return;
  }
  const relative = path.relative(folder, real);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    problems.add(
      'warning',
      'run-arg',
      at,
      `--env-file ${quote(file)} is outside the workspace folder`,
      'not read: the VM gets nothing from outside its folder',
    );
    return;
  }
  for (const line of fs.readFileSync(real, 'utf8').split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    setEnv(trimmed, effect, problems, at);
  }
}

/** `-v SRC:DST[:ro]` as a --mount string. */
function volumeToMount(value: string): string {
  const [source = '', target, options] = value.split(':');
  const type = source.startsWith('/') || source.startsWith('.') || source.startsWith('~') ? 'bind' : 'volume';
  return target === undefined
    ? `type=volume,target=${source}`
    : `type=${type},source=${source},target=${target}${options?.split(',').includes('ro') ? ',readonly' : ''}`;
}

function memoryMib(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([bkmg])?$/i.exec(value);
  if (!match) return undefined;
  const factor = { b: 1 / (1024 * 1024), k: 1 / 1024, m: 1, g: 1024 }[
    (match[2] ?? 'b').toLowerCase() as 'b' | 'k' | 'm' | 'g'
  ];
  return Math.ceil(Number(match[1]) * factor);
}
