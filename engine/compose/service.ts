import { quote } from '../devcontainer/problems';
import { isMap } from './merge';
import { yamlPath } from './problems';
import type { ComposeService } from './types';
import { formatPlatform, isPlatformText, parsePlatform } from '../image/platform';
import { UNHONOURED } from './unsupported';
import { splitWords } from './words';
import type { ServiceContext, ServicePath } from './service-context';
import { readBuild } from './service-build';
import { readEnvironment } from './service-environment';
import { readPorts } from './service-ports';
import { readTmpfs, readVolumes } from './service-storage';
import { readDependsOn, readHealthcheck, readResources } from './service-health';

export type { ServiceContext } from './service-context';

const HANDLED = new Set([
  'image',
  'build',
  'environment',
  'env_file',
  'working_dir',
  'user',
  'command',
  'entrypoint',
  'ports',
  'expose',
  'volumes',
  'tmpfs',
  'depends_on',
  'healthcheck',
  'profiles',
  'mem_limit',
  'cpus',
  'deploy',
  'network_mode',
  'platform',
  // Followed before the service is read (extends.ts); one that could not be is reported there.
  'extends',
]);

/** One service of the merged project, normalised; what it cannot honour is reported. */
export function readService(name: string, raw: unknown, ctx: ServiceContext): ComposeService | undefined {
  const at = (...keys: Array<string | number>) => yamlPath(['services', name, ...keys]);
  const problem = (
    severity: 'error' | 'warning' | 'info',
    code: string,
    where: string,
    message: string,
    consequence?: string,
  ) => ctx.problems.add(ctx.file, severity, code, where, message, consequence);
  if (!isMap(raw)) {
    problem(
      'error',
      'compose-service',
      at(),
      `the service is ${quote(raw)}, not a mapping`,
      'the service cannot start',
    );
    return undefined;
  }
  const service: ComposeService = {
    name,
    environment: {},
    ports: [],
    expose: [],
    volumes: [],
    tmpfs: [],
    dependsOn: {},
    profiles: [],
  };
  for (const key of Object.keys(raw)) {
    if (HANDLED.has(key) || key.startsWith('x-')) continue;
    const known = UNHONOURED[key];
    if (known)
      problem(known.severity, 'compose-unsupported', at(key), `${key} is set to ${quote(raw[key])}`, known.consequence);
    else
      problem(
        'warning',
        'compose-unknown-key',
        at(key),
        `${key} is not a compose service key`,
        'ignored; check its spelling',
      );
  }
  if (raw.image !== undefined) {
    if (typeof raw.image === 'string' && raw.image.trim()) service.image = raw.image.trim();
    else
      problem(
        'error',
        'compose-image',
        at('image'),
        `image is ${quote(raw.image)}, not an image reference`,
        'the service has no image',
      );
  }
  if (raw.build !== undefined) {
    const build = readBuild(raw.build, ctx, at('build'));
    if (build) service.build = build;
  }
  if (raw.platform !== undefined) readPlatform(raw.platform, service, problem, at('platform'));
  if (!service.image && !service.build)
    problem(
      'error',
      'compose-no-image',
      at(),
      'the service has neither image nor build',
      'the service cannot start; give it an image or a build',
    );
  readEnvironment(raw, service, ctx, at);
  if (raw.working_dir !== undefined) {
    if (typeof raw.working_dir === 'string' && raw.working_dir.startsWith('/')) service.workingDir = raw.working_dir;
    else
      problem(
        'warning',
        'compose-working-dir',
        at('working_dir'),
        `working_dir is ${quote(raw.working_dir)}, not an absolute path`,
        "the image's working directory is used",
      );
  }
  if (raw.user !== undefined) {
    if ((typeof raw.user === 'string' && raw.user) || typeof raw.user === 'number') service.user = String(raw.user);
    else problem('warning', 'compose-user', at('user'), `user is ${quote(raw.user)}`, "the image's user is used");
  }
  for (const key of ['command', 'entrypoint'] as const) {
    if (raw[key] === undefined || raw[key] === null) continue;
    const argv = readArgv(raw[key]);
    if (argv) service[key] = argv;
    else
      problem(
        'warning',
        'compose-command',
        at(key),
        `${key} is ${quote(raw[key])}, not a string or a list of strings`,
        `the image's ${key} is used`,
      );
  }
  readPorts(raw, service, ctx, at);
  readVolumes(raw, service, ctx, at);
  readTmpfs(raw.tmpfs, service, ctx, at);
  readDependsOn(raw.depends_on, service, ctx, at);
  if (raw.healthcheck !== undefined) service.healthcheck = readHealthcheck(raw.healthcheck, ctx, at);
  if (raw.healthcheck !== undefined && service.healthcheck === undefined) delete service.healthcheck;
  if (raw.profiles !== undefined) {
    if (Array.isArray(raw.profiles) && raw.profiles.every((p) => typeof p === 'string'))
      service.profiles = raw.profiles as string[];
    else
      problem(
        'warning',
        'compose-profiles',
        at('profiles'),
        `profiles is ${quote(raw.profiles)}, not a list of names`,
        'the service has no profile and starts with the others',
      );
  }
  readResources(raw, service, ctx, at);
  readNetworkMode(raw.network_mode, service, ctx, at);
  return service;
}

function readArgv(value: unknown): string[] | undefined {
  if (typeof value === 'string') return splitWords(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number'))
    return value.map(String);
  return undefined;
}

function readNetworkMode(value: unknown, service: ComposeService, ctx: ServiceContext, at: ServicePath): void {
  if (value === undefined || value === 'bridge' || value === 'default') return;
  if (value === 'none') service.network = { mode: 'none' };
  else if (typeof value === 'string' && /^service:[A-Za-z0-9][\w.-]*$/.test(value))
    service.network = { mode: 'service', service: value.slice('service:'.length) };
  else {
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-unsupported',
      at('network_mode'),
      `network_mode is ${quote(value)}`,
      "ignored: each service is its own VM and reaches the others by name on their declared ports only; it never shares the host's network",
    );
  }
}

/** `platform: linux/arm64`: the platform of an image pulled as it is; a build is for this machine's. */
function readPlatform(
  raw: unknown,
  service: ComposeService,
  problem: (severity: 'warning', code: string, where: string, message: string, consequence: string) => void,
  where: string,
): void {
  if (typeof raw !== 'string' || !isPlatformText(raw)) {
    problem(
      'warning',
      'compose-platform',
      where,
      `platform is ${quote(raw)}, not OS/ARCH[/VARIANT]`,
      "the image is pulled for this machine's platform",
    );
  } else if (service.build) {
    problem(
      'warning',
      'compose-platform',
      where,
      `platform ${quote(raw)} is set on a service that is built`,
      "ignored: the build runs in a VM of this machine's platform",
    );
  } else service.platform = formatPlatform(parsePlatform(raw));
}
