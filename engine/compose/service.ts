import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { quote } from '../devcontainer/problems';
import { parseDuration, parseSizeMib } from './durations';
import { isInside, readFolderFile, realPathOf } from './files';
import { asMap, isMap } from './merge';
import { isLoopback, isPort, parsePortEntry, range } from './ports';
import type { ComposeProblems } from './problems';
import { yamlPath } from './problems';
import type { ComposeBuild, ComposeService, DependsOnCondition, HealthCheck } from './types';
import { formatPlatform, isPlatformText, parsePlatform } from '../image/platform';
import { UNHONOURED } from './unsupported';
import { splitWords } from './words';
import { parseVolumeEntry } from './volumes';

export interface ServiceContext {
  /** The workspace folder (real path): binds, build contexts and env files must be inside it. */
  folder: string;
  /** Where relative paths start: the first compose file's folder, as in docker compose. */
  projectDir: string;
  /** The compose file that defines the service, as problems name it. */
  file: string;
  /** Host variables the user allowed into VMs: what a bare `KEY` in environment takes. */
  hostEnv: (name: string) => string | undefined;
  problems: ComposeProblems;
}

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

const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0, startIntervalMs: 5_000 };

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

function readBuild(value: unknown, ctx: ServiceContext, at: string): ComposeBuild | undefined {
  const raw = typeof value === 'string' ? { context: value } : value;
  if (!isMap(raw)) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build',
      at,
      `build is ${quote(value)}, not a path or a mapping`,
      'the service cannot be built',
    );
    return undefined;
  }
  const contextText = raw.context === undefined ? '.' : raw.context;
  if (
    typeof contextText !== 'string' ||
    /^[a-z][a-z0-9+.-]*:\/\//i.test(contextText) ||
    contextText.startsWith('git@')
  ) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-context',
      `${at}.context`,
      `the build context ${quote(contextText)} is not a folder path`,
      'the service cannot be built; build contexts must be folders inside the workspace',
    );
    return undefined;
  }
  // Links resolved: a context that is a link out of the folder would hand the builder VM its target.
  const context = realPathOf(path.resolve(ctx.projectDir, contextText));
  if (!isInside(ctx.folder, context)) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-context',
      `${at}.context`,
      `the build context ${quote(contextText)} is outside the workspace folder (${context})`,
      'the service cannot be built; the builder VM sees only the workspace folder',
    );
    return undefined;
  }
  if (!fs.statSync(context, { throwIfNoEntry: false })?.isDirectory()) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-context',
      `${at}.context`,
      `the build context ${quote(contextText)} does not exist (${context})`,
      'the service cannot be built; fix the path',
    );
    return undefined;
  }
  const dockerfileText = typeof raw.dockerfile === 'string' && raw.dockerfile ? raw.dockerfile : 'Dockerfile';
  const dockerfile = realPathOf(path.resolve(context, dockerfileText));
  if (!isInside(ctx.folder, dockerfile) || !fs.statSync(dockerfile, { throwIfNoEntry: false })?.isFile()) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-dockerfile',
      `${at}.dockerfile`,
      `the Dockerfile ${quote(dockerfileText)} ${isInside(ctx.folder, dockerfile) ? 'does not exist' : 'is outside the workspace folder'} (${dockerfile})`,
      'the service cannot be built; fix build.dockerfile (relative to the build context)',
    );
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!['context', 'dockerfile', 'args', 'target'].includes(key) && !key.startsWith('x-')) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-build-option',
        `${at}.${key}`,
        `build.${key} is ${quote(raw[key])}`,
        'not applied to the build',
      );
    }
  }
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(asMap(raw.args))) {
    if (v === null || v === undefined) continue;
    args[k] = String(v);
  }
  return {
    context,
    dockerfile: path.relative(context, dockerfile),
    args,
    ...(typeof raw.target === 'string' && raw.target ? { target: raw.target } : {}),
  };
}

/** env_file first (in order), then environment on top, as docker compose layers them. */
function readEnvironment(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
  const files = raw.env_file === undefined ? [] : Array.isArray(raw.env_file) ? raw.env_file : [raw.env_file];
  files.forEach((entry, i) => {
    const where = Array.isArray(raw.env_file) ? at('env_file', i) : at('env_file');
    const spec =
      typeof entry === 'string'
        ? { path: entry, required: true }
        : isMap(entry) && typeof entry.path === 'string'
          ? { path: entry.path, required: entry.required !== false }
          : undefined;
    if (!spec) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-env-file',
        where,
        `env_file entry ${quote(entry)} is not a path`,
        'not read',
      );
      return;
    }
    const file = path.resolve(ctx.projectDir, spec.path);
    const read = readFolderFile(ctx.folder, file);
    if ('error' in read) {
      if (read.error === 'missing' && !spec.required) return;
      const consequence =
        read.error === 'outside'
          ? 'not read: host files outside the folder do not reach the VMs; copy the values the service needs into a file in the folder'
          : `the service starts without its variables${read.error === 'missing' ? '; create the file or mark it required: false' : ''}`;
      ctx.problems.add(
        ctx.file,
        read.error === 'missing' ? 'error' : 'warning',
        'compose-env-file',
        where,
        `env_file ${quote(spec.path)}: ${read.detail}`,
        consequence,
      );
      return;
    }
    Object.assign(service.environment, parseDotenv(read.text));
  });
  for (const [key, value] of Object.entries(asMap(raw.environment))) {
    if (value === null || value === undefined) {
      const host = ctx.hostEnv(key);
      if (host !== undefined) service.environment[key] = host;
      else
        ctx.problems.add(
          ctx.file,
          'warning',
          'compose-env-not-passed',
          at('environment', key),
          `${key} takes its value from the host environment, which is not passed into VMs unless allowed`,
          `${key} is unset in the service; allow it with the microvm.localEnv.allow setting or --allow-local-env ${key}, or give it a value`,
        );
    } else if (isMap(value) || Array.isArray(value)) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-environment',
        at('environment', key),
        `${key} is ${quote(value)}, not a string`,
        `${key} is unset in the service`,
      );
    } else {
      service.environment[key] = String(value);
    }
  }
}

function readArgv(value: unknown): string[] | undefined {
  if (typeof value === 'string') return splitWords(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number'))
    return value.map(String);
  return undefined;
}

function readPorts(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
  const list = raw.ports === undefined ? [] : Array.isArray(raw.ports) ? raw.ports : undefined;
  if (!list)
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-ports',
      at('ports'),
      `ports is ${quote(raw.ports)}, not a list`,
      'no port of the service is published',
    );
  (list ?? []).forEach((entry, i) => {
    const parsed = parsePortEntry(entry);
    if ('error' in parsed) {
      ctx.problems.add(ctx.file, 'warning', 'compose-port', at('ports', i), parsed.error, 'this port is not published');
      return;
    }
    if (parsed.hostIp && !isLoopback(parsed.hostIp)) {
      ctx.problems.add(
        ctx.file,
        'info',
        'compose-port-address',
        at('ports', i),
        `the port is published on ${parsed.hostIp}`,
        'published on 127.0.0.1 only: forwards never listen beyond this machine',
      );
    }
    for (const port of parsed.ports) {
      if (port.protocol === 'udp') {
        ctx.problems.add(
          ctx.file,
          'warning',
          'compose-port-udp',
          at('ports', i),
          `${port.target}/udp is a UDP port`,
          'not forwarded: forwards are TCP only',
        );
        continue;
      }
      service.ports.push(port);
      if (!service.expose.includes(port.target)) service.expose.push(port.target);
    }
  });
  const expose = raw.expose === undefined ? [] : Array.isArray(raw.expose) ? raw.expose : [raw.expose];
  expose.forEach((entry, i) => {
    const ports =
      typeof entry === 'number'
        ? isPort(entry)
          ? [entry]
          : { error: `${entry} is not a port` }
        : range(String(entry).split('/', 1)[0] ?? '');
    if ('error' in ports)
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-expose',
        at('expose', i),
        ports.error,
        'not reachable from the other services',
      );
    else for (const p of ports) if (!service.expose.includes(p)) service.expose.push(p);
  });
}

function readVolumes(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
  if (raw.volumes === undefined) return;
  if (!Array.isArray(raw.volumes)) {
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-volumes',
      at('volumes'),
      `volumes is ${quote(raw.volumes)}, not a list`,
      'nothing is mounted',
    );
    return;
  }
  raw.volumes.forEach((entry, i) => {
    const parsed = parseVolumeEntry(entry, ctx.projectDir);
    if ('error' in parsed) {
      ctx.problems.add(ctx.file, 'warning', 'compose-volume', at('volumes', i), parsed.error, 'not mounted');
      return;
    }
    // A bind is judged by where its links lead (the mount layer follows them), not by its text.
    if (parsed.type === 'bind') parsed.source = realPathOf(parsed.source);
    if (parsed.type === 'bind' && isInside(parsed.source, ctx.folder) && parsed.source !== ctx.folder) {
      // `../..:/workspaces` in .devcontainer/ (the templates' pattern) names the folder's parent:
      // the folder alone is mounted where it would appear, and its siblings stay on the host.
      const target = path.posix.join(parsed.target, ...path.relative(parsed.source, ctx.folder).split(path.sep));
      ctx.problems.add(
        ctx.file,
        'info',
        'compose-bind-parent',
        at('volumes', i),
        `${quote(parsed.source)} holds the workspace folder and other folders`,
        `only the workspace folder is mounted, at ${target}; the rest stays on the host`,
      );
      service.volumes.push({ type: 'bind', source: ctx.folder, target, readOnly: parsed.readOnly });
      return;
    }
    if (parsed.type === 'bind' && !isInside(ctx.folder, parsed.source)) {
      const socket = /docker\.sock$/.test(parsed.source);
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-bind-outside-folder',
        at('volumes', i),
        `${quote(parsed.source)} is outside the workspace folder`,
        socket
          ? "not mounted: the host's Docker socket would hand the VM the host; there is no Docker engine inside the workspace"
          : `not mounted: host paths outside the folder never reach a VM; ${parsed.target} is an empty directory in the service`,
      );
      return;
    }
    if (parsed.type === 'tmpfs')
      service.tmpfs.push({ target: parsed.target, ...(parsed.sizeMib ? { sizeMib: parsed.sizeMib } : {}) });
    else service.volumes.push(parsed);
  });
}

function readTmpfs(
  value: unknown,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
  if (value === undefined) return;
  const list = Array.isArray(value) ? value : [value];
  list.forEach((entry, i) => {
    if (typeof entry !== 'string' || !entry.startsWith('/')) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-tmpfs',
        Array.isArray(value) ? at('tmpfs', i) : at('tmpfs'),
        `tmpfs entry ${quote(entry)} is not an absolute path`,
        'not mounted',
      );
      return;
    }
    const where = Array.isArray(value) ? at('tmpfs', i) : at('tmpfs');
    const [target = '', options = ''] = entry.split(':');
    if (path.posix.normalize(target) === '/') {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-tmpfs',
        where,
        "the tmpfs target is the service's root",
        'not mounted',
      );
      return;
    }
    const size = /(?:^|,)size=([^,]+)/.exec(options)?.[1];
    const sizeMib = size === undefined ? undefined : parseSizeMib(size);
    if (size !== undefined && !sizeMib)
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-tmpfs',
        where,
        `tmpfs size ${quote(size)} is not a size such as 64m`,
        `${target} is mounted with the kernel's default size, half the VM's memory`,
      );
    service.tmpfs.push({ target, ...(sizeMib ? { sizeMib } : {}) });
  });
}

const CONDITIONS: DependsOnCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully'];

function readDependsOn(
  value: unknown,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
  if (value === undefined) return;
  if (Array.isArray(value)) {
    for (const dep of value)
      if (typeof dep === 'string') service.dependsOn[dep] = { condition: 'service_started', required: true };
    return;
  }
  if (!isMap(value)) {
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-depends-on',
      at('depends_on'),
      `depends_on is ${quote(value)}, not a list or a mapping`,
      'the service does not wait for any other',
    );
    return;
  }
  for (const [dep, spec] of Object.entries(value)) {
    const condition = isMap(spec) && spec.condition !== undefined ? spec.condition : 'service_started';
    if (!CONDITIONS.includes(condition as DependsOnCondition)) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-depends-on',
        at('depends_on', dep, 'condition'),
        `condition ${quote(condition)} is not one of ${CONDITIONS.join(', ')}`,
        `the service waits for ${dep} to start only`,
      );
    }
    service.dependsOn[dep] = {
      condition: CONDITIONS.includes(condition as DependsOnCondition)
        ? (condition as DependsOnCondition)
        : 'service_started',
      required: !(isMap(spec) && spec.required === false),
    };
  }
}

function readHealthcheck(
  value: unknown,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): HealthCheck | undefined {
  if (!isMap(value)) {
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-healthcheck',
      at('healthcheck'),
      `healthcheck is ${quote(value)}, not a mapping`,
      'the service has no health check',
    );
    return undefined;
  }
  if (value.disable === true) return undefined;
  const test = value.test;
  let argv: string[] | undefined;
  if (typeof test === 'string') argv = ['/bin/sh', '-c', test];
  else if (Array.isArray(test) && test.every((t) => typeof t === 'string')) {
    const [kind, ...rest] = test as string[];
    if (kind === 'NONE') return undefined;
    if (kind === 'CMD' && rest.length > 0) argv = rest;
    else if (kind === 'CMD-SHELL' && rest.length > 0) argv = ['/bin/sh', '-c', rest.join(' ')];
  }
  if (!argv) {
    ctx.problems.add(
      ctx.file,
      'warning',
      'compose-healthcheck',
      at('healthcheck', 'test'),
      `test is ${quote(test)}; write ["CMD", ...], ["CMD-SHELL", "..."] or a string`,
      'the service has no health check, so services waiting for it to be healthy wait for it to start only',
    );
    return undefined;
  }
  const check: HealthCheck = { test: argv, ...HEALTH_DEFAULTS };
  const durations = {
    interval: 'intervalMs',
    timeout: 'timeoutMs',
    start_period: 'startPeriodMs',
    start_interval: 'startIntervalMs',
  } as const;
  for (const [key, field] of Object.entries(durations)) {
    if (value[key] === undefined) continue;
    const ms = parseDuration(value[key]);
    if (ms === undefined)
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-duration',
        at('healthcheck', key),
        `${key} is ${quote(value[key])}, not a duration such as "10s" or "1m30s"`,
        `the default ${HEALTH_DEFAULTS[field] / 1000}s is used`,
      );
    else check[field] = ms;
  }
  if (value.retries !== undefined) {
    if (typeof value.retries === 'number' && Number.isInteger(value.retries) && value.retries >= 0)
      check.retries = value.retries;
    else
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-healthcheck',
        at('healthcheck', 'retries'),
        `retries is ${quote(value.retries)}, not a whole number`,
        'the default 3 is used',
      );
  }
  return check;
}

function readResources(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
  const deploy = isMap(raw.deploy) ? raw.deploy : {};
  const limits = isMap(deploy.resources) && isMap(deploy.resources.limits) ? deploy.resources.limits : {};
  for (const key of Object.keys(deploy)) {
    if (key !== 'resources')
      ctx.problems.add(
        ctx.file,
        'info',
        'compose-unsupported',
        at('deploy', key),
        `deploy.${key} is set`,
        'ignored: one VM per service',
      );
  }
  const memory = raw.mem_limit ?? limits.memory;
  if (memory !== undefined) {
    const mib = parseSizeMib(memory);
    if (mib && mib >= 64) service.memoryMib = mib;
    else
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-memory',
        raw.mem_limit !== undefined ? at('mem_limit') : at('deploy', 'resources', 'limits', 'memory'),
        `memory ${quote(memory)} is not a size of at least 64m`,
        'the service VM gets the default memory',
      );
  }
  const cpus = raw.cpus ?? limits.cpus;
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (Number.isFinite(n) && n > 0) service.cpus = Math.ceil(n);
    else
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-cpus',
        raw.cpus !== undefined ? at('cpus') : at('deploy', 'resources', 'limits', 'cpus'),
        `cpus ${quote(cpus)} is not a positive number`,
        'the service VM gets one vCPU',
      );
  }
}

function readNetworkMode(
  value: unknown,
  service: ComposeService,
  ctx: ServiceContext,
  at: (...k: Array<string | number>) => string,
): void {
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
