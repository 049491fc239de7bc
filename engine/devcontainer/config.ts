import { z } from 'zod';
import { HOOKS, Hook, LifecycleCommand, toLifecycleCommand, WAIT_FOR, WaitFor } from './lifecycle';
import {
  AUTO_FORWARD_ACTIONS,
  parseAppPort,
  parseForwardPort,
  PortAttributes,
  portKeyMatcher,
  PortsConfig,
} from './ports';
import { firstIssue, valueAt } from '../options';
import { jsonPath, Problems, quote } from './problems';

/**
 * A devcontainer.json read key by key: each known key is checked on its own, so one bad
 * value costs that key (with a problem naming it), never the whole file. Editor-only keys go
 * to the log; unknown keys are reported, as they are often typos.
 */
export interface BuildConfig {
  /** Relative to the configuration file's folder, as written. */
  dockerfile: string;
  context: string;
  args: Record<string, string>;
  target?: string;
  cacheFrom: string[];
  options: string[];
  /** From build.options (engine/devcontainer/build-options.ts), once the plan has read them. */
  pull?: boolean;
  network?: 'outbound' | 'none';
}

/** devcontainer.json's compose fields: the files, the service the workspace opens in, the services to start. */
export interface ComposeConfig {
  files: string[];
  service: string;
  runServices?: string[];
}

/** devcontainer.json's `hostRequirements`, memory and storage in MiB. */
export interface HostRequirements {
  cpus?: number;
  memoryMib?: number;
  storageMib?: number;
  gpu?: boolean | 'optional' | Record<string, unknown>;
}

/** How the remote user's environment is read before hooks run (devcontainer.json's `userEnvProbe`). */
export type UserEnvProbe = 'none' | 'interactiveShell' | 'loginShell' | 'loginInteractiveShell';

/** devcontainer.json as the engine understands it, validated (unknown keys are problems, not errors). */
export interface DevcontainerConfig {
  name?: string;
  image?: string;
  build?: BuildConfig;
  compose?: ComposeConfig;
  /** Feature references and their option values, as written. */
  features: Record<string, unknown>;
  overrideFeatureInstallOrder: string[];
  ports: PortsConfig;
  containerEnv: Record<string, string>;
  /** A null value unsets the variable. */
  remoteEnv: Record<string, string | null>;
  containerUser?: string;
  remoteUser?: string;
  updateRemoteUserUID?: boolean;
  userEnvProbe?: UserEnvProbe;
  workspaceFolder?: string;
  /** As written (`""` = no workspace mount). */
  workspaceMount?: string;
  /** Raw entries, parsed in plan.ts once variables are substituted. */
  mounts: unknown[];
  runArgs: string[];
  hostRequirements: HostRequirements;
  hooks: Partial<Record<Hook, LifecycleCommand>>;
  waitFor?: WaitFor;
  hasInitializeCommand: boolean;
  shutdownAction?: string;
  overrideCommand?: boolean;
  init?: boolean;
  privileged?: boolean;
  capAdd: string[];
  securityOpt: string[];
  customizations: Record<string, unknown>;
}

const stringArray = z.array(z.string());
/** A name, or a uid written as a number (`1000`). */
const user = z.union([z.string().min(1), z.number().int().nonnegative().transform(String)]);
/** docker run's words; a number (`"--cpus", 2`) is its text, as the reference CLI passes it. */
const runArgs = z.array(z.union([z.string(), z.number().transform(String)]));
const size = z
  .string()
  .regex(/^\d+(\.\d+)?\s*([tgmk]b?)?$/i)
  .or(z.number().nonnegative());

/** Keys for editors and other tools: not for the VM; they go to the log. */
const EDITOR_KEYS = new Set([
  'customizations',
  'extensions',
  'settings',
  'devPort',
  '$schema',
  'otherPortsAttributes_comment',
]);

export function emptyConfig(): DevcontainerConfig {
  return {
    features: {},
    overrideFeatureInstallOrder: [],
    ports: { forward: [], servicePorts: [], publish: [], attributes: {} },
    containerEnv: {},
    remoteEnv: {},
    mounts: [],
    runArgs: [],
    hostRequirements: {},
    hooks: {},
    hasInitializeCommand: false,
    capAdd: [],
    securityOpt: [],
    customizations: {},
  };
}

type Reader = (value: unknown, config: DevcontainerConfig, problems: Problems, at: string) => void;

/** Reads `raw` (variables already substituted) into a config; every problem goes to `problems`. */
export function readConfig(raw: Record<string, unknown>, problems: Problems): DevcontainerConfig {
  const config = emptyConfig();
  for (const [key, value] of Object.entries(raw)) {
    const at = jsonPath([key]);
    const reader = READERS[key];
    if (reader) reader(value, config, problems, at);
    else if (EDITOR_KEYS.has(key))
      problems.add('info', 'editor-only', at, `${key} is for editors and other tools`, 'nothing changes in the VM');
    else problems.add('warning', 'unknown-key', at, `unknown key ${JSON.stringify(key)}`, 'ignored (a typo?)');
  }
  checkSources(raw, config, problems);
  return config;
}

/**
 * One way to get the environment, chosen as the reference CLI chooses it: a Dockerfile
 * (build.dockerfile or dockerFile), else an image, else compose. A file that names more is
 * opened the same way here, with a warning naming what is left out; a build without a
 * Dockerfile is an error only when nothing else gives the image.
 */
function checkSources(raw: Record<string, unknown>, config: DevcontainerConfig, problems: Problems): void {
  // service or runServices alone (or a dockerComposeFile already reported) make no compose workspace.
  if (config.compose && config.compose.files.length === 0) delete config.compose;
  if (config.build && !config.build.dockerfile) {
    const at = 'build' in raw ? '$.build' : '$.context';
    if (config.image !== undefined || config.compose) {
      problems.add(
        'warning',
        'build-without-dockerfile',
        at,
        `${at.slice(2)} is set but names no Dockerfile`,
        `ignored: the image comes from ${config.image !== undefined ? 'image' : 'dockerComposeFile'}`,
      );
      delete config.build;
    } else {
      problems.add(
        'error',
        'missing-dockerfile',
        'build' in raw ? '$.build.dockerfile' : '$.context',
        `${at.slice(2)} is set but names no Dockerfile`,
        'the folder cannot be opened as described; name the Dockerfile (build.dockerfile), relative to this file',
      );
    }
  }
  if (config.build && config.image !== undefined) {
    problems.add(
      'warning',
      'image-and-build',
      '$.image',
      `the file names both image ${quote(config.image)} and a Dockerfile`,
      'the Dockerfile is built and the image is not pulled (the reference CLI does the same, and only tags the build with it)',
    );
    delete config.image;
  }
  if (config.compose && (config.build || config.image !== undefined)) {
    problems.add(
      'warning',
      'compose-and-image',
      '$.dockerComposeFile',
      `the file names both dockerComposeFile and ${config.build ? 'a Dockerfile' : 'image'}`,
      `the compose files are not used: the workspace runs ${config.build ? 'the Dockerfile' : 'the image'} on its own, as the reference CLI does; remove the one you do not mean`,
    );
    delete config.compose;
  }
  if (config.compose && !config.compose.service)
    problems.add(
      'error',
      'missing-service',
      '$.service',
      'dockerComposeFile is set but service is not',
      'the workspace cannot start: set service to the compose service the workspace runs in',
    );
  if ('service' in raw && !('dockerComposeFile' in raw))
    problems.add(
      'warning',
      'service-without-compose',
      '$.service',
      'service is set but dockerComposeFile is not',
      'ignored',
    );
}

function check<T>(
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  value: unknown,
  problems: Problems,
  at: string,
  expected: string,
  severity: 'error' | 'warning' = 'warning',
): T | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  problems.add(
    severity,
    'invalid-type',
    at,
    `expected ${expected}, got ${quote(value)}`,
    severity === 'error' ? 'the folder cannot be opened as described' : 'ignored',
  );
  return undefined;
}

const READERS: Record<string, Reader> = {
  name: (v, c, p, at) => {
    c.name = check(z.string(), v, p, at, 'a string');
  },
  image: (v, c, p, at) => {
    c.image = check(z.string().min(1), v, p, at, 'an image reference', 'error');
  },
  build: (v, c, p, at) => readBuild(v, c, p, at),
  dockerFile: (v, c, p, at) => {
    const dockerfile = check(z.string().min(1), v, p, at, 'a Dockerfile path', 'error');
    if (dockerfile)
      c.build = { dockerfile, context: c.build?.context ?? '.', args: c.build?.args ?? {}, cacheFrom: [], options: [] };
  },
  context: (v, c, p, at) => {
    const context = check(z.string(), v, p, at, 'a directory path');
    if (context !== undefined && c.build) c.build.context = context;
    else if (context !== undefined) c.build = { dockerfile: '', context, args: {}, cacheFrom: [], options: [] };
  },
  dockerComposeFile: (v, c, p, at) => {
    const files = check(
      z.union([
        z
          .string()
          .min(1)
          .transform((s) => [s]),
        z.array(z.string().min(1)).min(1),
      ]),
      v,
      p,
      at,
      'a compose file path or an array of them',
      'error',
    );
    if (files)
      c.compose = {
        files,
        service: c.compose?.service ?? '',
        ...(c.compose?.runServices ? { runServices: c.compose.runServices } : {}),
      };
  },
  service: (v, c, p, at) => {
    const service = check(z.string().min(1), v, p, at, 'a service name', 'error');
    if (service)
      c.compose = {
        files: c.compose?.files ?? [],
        service,
        ...(c.compose?.runServices ? { runServices: c.compose.runServices } : {}),
      };
  },
  runServices: (v, c, p, at) => {
    const runServices = check(stringArray, v, p, at, 'an array of service names');
    if (runServices) c.compose = { files: c.compose?.files ?? [], service: c.compose?.service ?? '', runServices };
  },
  features: (v, c, p, at) => {
    c.features = check(z.record(z.unknown()), v, p, at, 'an object of feature references', 'error') ?? {};
  },
  overrideFeatureInstallOrder: (v, c, p, at) => {
    c.overrideFeatureInstallOrder = check(stringArray, v, p, at, 'an array of feature ids') ?? [];
  },
  forwardPorts: (v, c, p, at) => readForwardPorts(v, c, p, at),
  appPort: (v, c, p, at) => {
    const publish = parseAppPort(v);
    if (publish) c.ports.publish = publish;
    else
      p.add(
        'warning',
        'invalid-port',
        at,
        `expected a port, "HOST:GUEST" or an array of them, got ${quote(v)}`,
        'no port is published',
      );
  },
  portsAttributes: (v, c, p, at) => {
    c.ports.attributes = readPortsAttributes(v, p, at);
  },
  otherPortsAttributes: (v, c, p, at) => {
    c.ports.otherAttributes = readAttributes(v, p, at);
  },
  containerEnv: (v, c, p, at) => {
    c.containerEnv = readEnv(v, p, at, false) as Record<string, string>;
  },
  remoteEnv: (v, c, p, at) => {
    c.remoteEnv = readEnv(v, p, at, true);
  },
  containerUser: (v, c, p, at) => {
    c.containerUser = check(user, v, p, at, 'a user name or uid');
  },
  remoteUser: (v, c, p, at) => {
    c.remoteUser = check(user, v, p, at, 'a user name or uid');
  },
  updateRemoteUserUID: (v, c, p, at) => {
    c.updateRemoteUserUID = check(z.boolean(), v, p, at, 'true or false');
  },
  userEnvProbe: (v, c, p, at) => {
    c.userEnvProbe = check(
      z.enum(['none', 'interactiveShell', 'loginShell', 'loginInteractiveShell']),
      v,
      p,
      at,
      'none, interactiveShell, loginShell or loginInteractiveShell',
    );
  },
  workspaceFolder: (v, c, p, at) => {
    c.workspaceFolder = check(
      z.string().regex(/^\//),
      v,
      p,
      at,
      'an absolute path in the VM such as "/workspaces/app"',
    );
  },
  workspaceMount: (v, c, p, at) => {
    c.workspaceMount = check(z.string(), v, p, at, 'a mount string');
  },
  mounts: (v, c, p, at) => {
    c.mounts = check(z.array(z.unknown()), v, p, at, 'an array of mounts') ?? [];
  },
  runArgs: (v, c, p, at) => {
    c.runArgs = check(runArgs, v, p, at, 'an array of strings (docker run arguments)') ?? [];
  },
  hostRequirements: (v, c, p, at) => {
    c.hostRequirements = readHostRequirements(v, p, at);
  },
  initializeCommand: (v, c, p, at) => {
    c.hasInitializeCommand = true;
    // Quoted: what it would have made (a .env, a generated compose file) is missing here, and this says why.
    p.add(
      'warning',
      'initialize-command',
      at,
      `initializeCommand ${quote(v)} runs on the host in other tools`,
      'it never runs here: nothing from the workspace runs on the host; a file it would create is missing unless the repository has it',
    );
  },
  ...Object.fromEntries(HOOKS.map((hook) => [hook, ((v, c, p, at) => readHook(hook, v, c, p, at)) as Reader])),
  waitFor: (v, c, p, at) => {
    c.waitFor = check(z.enum(WAIT_FOR), v, p, at, WAIT_FOR.join(', '));
  },
  shutdownAction: (v, c, p, at) => {
    c.shutdownAction = check(
      z.enum(['none', 'stopContainer', 'stopCompose']),
      v,
      p,
      at,
      'none, stopContainer or stopCompose',
    );
  },
  overrideCommand: (v, c, p, at) => {
    c.overrideCommand = check(z.boolean(), v, p, at, 'true or false');
  },
  init: (v, c, p, at) => {
    c.init = check(z.boolean(), v, p, at, 'true or false');
  },
  privileged: (v, c, p, at) => {
    c.privileged = check(z.boolean(), v, p, at, 'true or false');
  },
  capAdd: (v, c, p, at) => {
    c.capAdd = check(stringArray, v, p, at, 'an array of capability names') ?? [];
  },
  securityOpt: (v, c, p, at) => {
    c.securityOpt = check(stringArray, v, p, at, 'an array of strings') ?? [];
  },
  secrets: (v, _c, p, at) => {
    const names = Object.keys(check(z.record(z.unknown()), v, p, at, 'an object of secret names') ?? {});
    if (names.length > 0)
      p.add(
        'info',
        'secrets',
        at,
        `secrets ${names.join(', ')} are ones a hosting service (Codespaces) asks the user for`,
        'none is asked for or set here; a host variable reaches the VM through ${localEnv:NAME} when microvm.localEnv.allow names it',
      );
  },
  customizations: (v, c, p, at) => {
    c.customizations = check(z.record(z.unknown()), v, p, at, 'an object') ?? {};
    p.add('info', 'editor-only', at, 'customizations are for editors and other tools', 'nothing changes in the VM');
  },
};

const buildSchema = z
  .object({
    dockerfile: z.string().min(1).optional(),
    context: z.string().optional(),
    // As the reference CLI passes them to --build-arg: a number or a boolean as its text.
    args: z.record(z.union([z.string(), z.number().transform(String), z.boolean().transform(String)])).optional(),
    // "" is no target, as in the reference CLI (templates leave `"target": ""` in).
    target: z.string().optional(),
    cacheFrom: z.union([z.string().transform((s) => [s]), stringArray]).optional(),
    options: stringArray.optional(),
  })
  .passthrough();

function readBuild(value: unknown, c: DevcontainerConfig, p: Problems, at: string): void {
  const build = check(buildSchema, value, p, at, 'an object {dockerfile, context, args, target}', 'error');
  if (!build) return;
  for (const key of Object.keys(build).filter(
    (k) => !['dockerfile', 'context', 'args', 'target', 'cacheFrom', 'options'].includes(k),
  )) {
    p.add('warning', 'unknown-key', `${at}.${key}`, `unknown build key ${JSON.stringify(key)}`, 'ignored');
  }
  c.build = {
    dockerfile: build.dockerfile ?? c.build?.dockerfile ?? '',
    context: build.context ?? c.build?.context ?? '.',
    args: build.args ?? {},
    ...(build.target ? { target: build.target } : {}),
    cacheFrom: build.cacheFrom ?? [],
    options: build.options ?? [],
  };
}

function readForwardPorts(value: unknown, c: DevcontainerConfig, p: Problems, at: string): void {
  if (!Array.isArray(value)) {
    p.add(
      'warning',
      'invalid-type',
      at,
      `expected an array of ports, got ${quote(value)}`,
      'no port is forwarded from the start',
    );
    return;
  }
  value.forEach((item, i) => {
    const port = parseForwardPort(item);
    if (!port)
      p.add(
        'warning',
        'invalid-port',
        `${at}[${i}]`,
        `expected a port from 1 to 65535 or "service:port", got ${quote(item)}`,
        typeof item === 'string' && /^\d+$/.test(item)
          ? `this entry is ignored; write the port as a number: ${item}`
          : 'this entry is ignored',
      );
    else if ('service' in port) c.ports.servicePorts.push(port);
    else if (!c.ports.forward.includes(port.port)) c.ports.forward.push(port.port);
  });
}

const attributesSchema = z
  .object({
    label: z.string().optional(),
    protocol: z.enum(['http', 'https']).optional(),
    onAutoForward: z.enum(AUTO_FORWARD_ACTIONS).optional(),
    requireLocalPort: z.boolean().optional(),
    elevateIfNeeded: z.boolean().optional(),
  })
  .passthrough();

function readAttributes(value: unknown, p: Problems, at: string): PortAttributes | undefined {
  const result = attributesSchema.safeParse(value);
  if (result.success) {
    const { label, protocol, onAutoForward, requireLocalPort, elevateIfNeeded } = result.data;
    return Object.fromEntries(
      Object.entries({ label, protocol, onAutoForward, requireLocalPort, elevateIfNeeded }).filter(
        ([, v]) => v !== undefined,
      ),
    );
  }
  const issue = firstIssue(result.error);
  p.add(
    'warning',
    'invalid-port-attributes',
    jsonPath([...pathOf(at), ...issue.path]),
    `${issue.message.toLowerCase()}, got ${quote(valueAt(value, issue.path))}`,
    'these attributes are ignored',
  );
  return undefined;
}

function readPortsAttributes(value: unknown, p: Problems, at: string): Record<string, PortAttributes> {
  const record = check(z.record(z.unknown()), value, p, at, 'an object keyed by port, range or process pattern');
  const out: Record<string, PortAttributes> = {};
  for (const [key, entry] of Object.entries(record ?? {})) {
    const where = jsonPath([...pathOf(at), key]);
    if (!portKeyMatcher(key)) {
      p.add(
        'warning',
        'invalid-port-key',
        where,
        `${JSON.stringify(key)} is not a port, a range or a regular expression`,
        'ignored',
      );
      continue;
    }
    const attributes = readAttributes(entry, p, where);
    if (attributes) out[key] = attributes;
  }
  return out;
}

function readEnv(value: unknown, p: Problems, at: string, allowNull: boolean): Record<string, string | null> {
  const record = check(z.record(z.unknown()), value, p, at, 'an object of environment variables');
  const out: Record<string, string | null> = {};
  for (const [name, entry] of Object.entries(record ?? {})) {
    const where = jsonPath([...pathOf(at), name]);
    if (!/^[^=\0]+$/.test(name))
      p.add('warning', 'invalid-env-name', where, `${JSON.stringify(name)} is not a variable name`, 'ignored');
    else if (typeof entry === 'string' && !entry.includes('\0')) out[name] = entry;
    else if (entry === null && allowNull) out[name] = null;
    else if (typeof entry === 'number' || typeof entry === 'boolean') out[name] = String(entry);
    else p.add('warning', 'invalid-type', where, `expected a string, got ${quote(entry)}`, 'the variable is not set');
  }
  return out;
}

function readHostRequirements(value: unknown, p: Problems, at: string): HostRequirements {
  const record = check(z.record(z.unknown()), value, p, at, 'an object {cpus, memory, storage, gpu}') ?? {};
  const out: HostRequirements = {};
  if (record.cpus !== undefined)
    out.cpus = check(z.number().int().min(1).max(1024), record.cpus, p, `${at}.cpus`, 'a whole number of CPUs');
  if (record.memory !== undefined)
    out.memoryMib = toMib(check(size, record.memory, p, `${at}.memory`, 'a size such as "8gb"'));
  if (record.storage !== undefined)
    out.storageMib = toMib(check(size, record.storage, p, `${at}.storage`, 'a size such as "32gb"'));
  if (record.gpu !== undefined && record.gpu !== false) {
    out.gpu = record.gpu as HostRequirements['gpu'];
    if (record.gpu !== 'optional') p.add('warning', 'gpu', `${at}.gpu`, 'a GPU is requested', 'the VM has no GPU');
  }
  return out;
}

/** "4gb" -> 4096; a bare number is bytes, as in the spec (binary multiples). */
export function toMib(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return Math.ceil(value / (1024 * 1024));
  const match = /^(\d+(?:\.\d+)?)\s*([tgmk])?b?$/i.exec(value) as RegExpExecArray;
  const factor = { t: 1024 * 1024, g: 1024, m: 1, k: 1 / 1024, '': 1 / (1024 * 1024) }[
    (match[2] ?? '').toLowerCase() as 't' | 'g' | 'm' | 'k' | ''
  ];
  return Math.ceil(Number(match[1]) * factor);
}

function readHook(hook: Hook, value: unknown, c: DevcontainerConfig, p: Problems, at: string): void {
  try {
    const command = toLifecycleCommand(value);
    if (command) c.hooks[hook] = command;
  } catch (err) {
    p.add('warning', 'invalid-command', at, `${(err as Error).message}, got ${quote(value)}`, `${hook} does not run`);
  }
}

function pathOf(at: string): Array<string | number> {
  const parts: Array<string | number> = [];
  for (const m of at.slice(1).matchAll(/\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    if (m[1] !== undefined) parts.push(m[1]);
    else if (m[2] !== undefined) parts.push(Number(m[2]));
    else if (m[3] !== undefined) parts.push(JSON.parse(m[3]) as string);
  }
  return parts;
}

/** `customizations.vscode.extensions` (and the legacy top-level `extensions`): well-formed ids only. */
export function recommendedExtensions(config: DevcontainerConfig, raw: Record<string, unknown> = {}): string[] {
  const vscode = config.customizations.vscode as { extensions?: unknown } | undefined;
  const lists = [vscode?.extensions, raw.extensions].filter(Array.isArray) as unknown[][];
  const ids = lists
    .flat()
    .filter((id): id is string => typeof id === 'string' && /^[A-Za-z0-9][\w-]*\.[A-Za-z0-9][\w.-]*$/.test(id));
  return [...new Set(ids)];
}
