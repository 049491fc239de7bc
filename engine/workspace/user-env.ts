import type { Vm } from '../vm/vm';
import type { UserEnvProbe } from '../devcontainer/config';
import type { UserInfo } from '../vm/user';

const PROBE_TIMEOUT_MS = 10_000;
const MARK = '__microvm_env_probe__';

/**
 * The environment a login and/or interactive shell of the guest would have (`userEnvProbe`),
 * for lifecycle hooks: `$SHELL -lic` (or -lc, -ic) prints /proc/self/environ between two
 * markers, as the reference CLI does. A shell whose startup files hang or fail gives {} and a
 * reason, never a stuck open.
 */
export async function probeUserEnv(
  vm: Vm,
  probe: UserEnvProbe,
  user: UserInfo,
  cwd: string,
): Promise<{ env: Record<string, string>; problem?: string }> {
  if (probe === 'none') return { env: {} };
  const shell = user.shell;
  const flags = { loginInteractiveShell: '-lic', loginShell: '-lc', interactiveShell: '-ic' }[probe];
  try {
    const result = await vm.exec({
      argv: [shell, flags, `printf '%s' ${MARK}; cat /proc/self/environ; printf '%s' ${MARK}`],
      cwd,
      timeoutMs: PROBE_TIMEOUT_MS,
      encoding: 'utf8',
      maxBuffer: 1024 * 1024,
      user: { uid: user.uid, gid: user.gid, groups: user.groups },
      env: { HOME: user.home, USER: user.name, LOGNAME: user.name, SHELL: shell },
    });
    const [, environ, after] = result.stdout.split(MARK);
    if (environ === undefined || after === undefined)
      return { env: {}, problem: `${shell} ${flags} printed no environment (exit ${result.exitCode})` };
    return { env: parseEnviron(environ) };
  } catch (err) {
    return { env: {}, problem: `${shell} ${flags} did not finish: ${(err as Error).message}` };
  }
}

/** NUL-separated NAME=VALUE pairs; PWD and the shell's own bookkeeping are dropped. */
export function parseEnviron(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split('\0')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq);
    if (name === 'PWD' || name === 'OLDPWD' || name === 'SHLVL' || name === '_') continue;
    env[name] = pair.slice(eq + 1);
  }
  return env;
}
