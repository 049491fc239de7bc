import { quote } from '../devcontainer/problems';
import { parseDuration, parseSizeMib } from './durations';
import { isMap } from './merge';
import type { ComposeService, DependsOnCondition, HealthCheck } from './types';
import type { ServiceContext, ServicePath } from './service-context';

const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0, startIntervalMs: 5_000 };

const CONDITIONS: DependsOnCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully'];

export function readDependsOn(value: unknown, service: ComposeService, ctx: ServiceContext, at: ServicePath): void {
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

export function readHealthcheck(value: unknown, ctx: ServiceContext, at: ServicePath): HealthCheck | undefined {
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

export function readResources(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: ServicePath,
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
