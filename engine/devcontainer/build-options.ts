import { Problems, quote } from './problems';

/** What `build.options` (docker build flags) mean for a build in the builder microVM. */
export interface BuildOptionsEffect {
  args: Record<string, string>;
  target?: string;
  /** `--pull`: ask the registry for the base images even when they are stored. */
  pull: boolean;
  network?: 'outbound' | 'none';
}

/** Flags about how docker shows or names the result: nothing to do here. */
const MOOT = new Set([
  '--progress',
  '--label',
  '--tag',
  '-t',
  '--quiet',
  '-q',
  '--rm',
  '--force-rm',
  '--load',
  '--iidfile',
  '--metadata-file',
  '--compress',
  '--squash',
]);
/** Flags that hand the build something of the host's: never passed, said so. */
const HOST_SECRETS = new Set(['--ssh', '--secret']);
const WITH_VALUE = new Set([
  '--build-arg',
  '--target',
  '--network',
  '--platform',
  '--progress',
  '--label',
  '--tag',
  '-t',
  '--ssh',
  '--secret',
  '--add-host',
  '--iidfile',
  '--metadata-file',
  '--cache-to',
  '--cache-from',
  '--output',
  '-o',
  '--shm-size',
  '--ulimit',
  '--memory',
  '-m',
  '--cpu-shares',
  '--cgroup-parent',
  '--isolation',
  '--file',
  '-f',
  '--builder',
  '--allow',
  '--attest',
  '--sbom',
  '--provenance',
]);

/**
 * Reads `build.options` as `docker build` would take them: `--build-arg`, `--target`,
 * `--pull` and `--network` shape the build in the builder VM (`--no-cache` is said to be moot:
 * the build cache is what makes a reopen fast); flags about the
 * output's name or display mean nothing here (info); `--ssh` and `--secret` would hand the build
 * the host's keys and are never passed (warning: the steps that need them fail); `--platform`
 * other than the VM's architecture and every other flag are reported and ignored.
 */
export function readBuildOptions(options: readonly string[], problems: Problems, arch = 'amd64'): BuildOptionsEffect {
  const effect: BuildOptionsEffect = { args: {}, pull: false };
  for (let i = 0; i < options.length; i++) {
    const at = `$.build.options[${i}]`;
    const [flag, inline] = splitFlag(options[i]!);
    const value = inline ?? (WITH_VALUE.has(flag) ? options[++i] : undefined);
    if (WITH_VALUE.has(flag) && value === undefined) {
      problems.add('warning', 'build-option', at, `${flag} has no value`, 'ignored');
      continue;
    }
    apply(flag, value ?? '', effect, problems, at, arch);
  }
  return effect;
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
  return eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

function apply(
  flag: string,
  value: string,
  effect: BuildOptionsEffect,
  problems: Problems,
  at: string,
  arch: string,
): void {
  switch (flag) {
    case '--build-arg': {
      const eq = value.indexOf('=');
      const name = eq < 0 ? value : value.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.add('warning', 'build-option', at, `--build-arg ${quote(value)} is not NAME=VALUE`, 'ignored');
      } else if (eq < 0) {
        // docker takes the value from its own environment: the host's, which stays out of the build.
        problems.add(
          'warning',
          'build-option',
          at,
          `--build-arg ${name} without a value would take it from the host environment`,
          `ignored (host variables stay out of the build); give the value in build.args, or ${'${localEnv:' + name + '}'} with microvm.localEnv.allow`,
        );
      } else {
        effect.args[name] = value.slice(eq + 1);
      }
      return;
    }
    case '--target':
      effect.target = value;
      return;
    case '--no-cache':
      problems.add(
        'info',
        'build-option',
        at,
        '--no-cache would build every step again on every open',
        'ignored: an unchanged reopen reuses the built image and a changed Dockerfile builds again from the first changed step',
      );
      return;
    case '--pull':
      effect.pull = true;
      return;
    case '--network':
      if (value === 'none') effect.network = 'none';
      else if (['host', 'default', 'bridge'].includes(value)) effect.network = 'outbound';
      else
        problems.add(
          'warning',
          'build-option',
          at,
          `--network ${quote(value)} names a docker network`,
          "RUN steps get the workspace's network (outbound NAT) instead",
        );
      return;
    case '--platform': {
      const wanted = value.split(',').map((p) => p.trim());
      if (!wanted.every((p) => p === `linux/${arch}` || p.startsWith(`linux/${arch}/`))) {
        problems.add(
          'warning',
          'build-option',
          at,
          `--platform ${quote(value)} is not this VM's architecture (linux/${arch})`,
          `the image is built for linux/${arch}; a Dockerfile that needs another platform's binaries fails`,
        );
      }
      return;
    }
    default:
  }
  if (HOST_SECRETS.has(flag)) {
    problems.add(
      'warning',
      'build-option',
      at,
      `${flag} would give the build the host's ${flag === '--ssh' ? 'SSH agent or keys' : 'secret files'}`,
      "not passed: the Dockerfile is the repository's and runs in a VM that does not get host secrets; steps that mount them fail",
    );
  } else if (MOOT.has(flag)) {
    problems.add(
      'info',
      'build-option',
      at,
      `${flag} only names or shows docker's result`,
      'ignored: the engine names and stores the image itself',
    );
  } else {
    problems.add('warning', 'build-option', at, `${quote(flag)} is not a build option this builder maps`, 'ignored');
  }
}
