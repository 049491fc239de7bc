import { z } from 'zod';

/**
 * The subset of devcontainer.json this extension honours, as zod schemas that also
 * normalize: commands become argv lists, ports become numbers, sizes become MiB.
 */

export const SUPPORTED_KEYS: ReadonlySet<string> = new Set([
  '$schema', 'name', 'image', 'forwardPorts', 'portsAttributes', 'containerEnv', 'remoteEnv', 'workspaceFolder', 'mounts',
  'onCreateCommand', 'updateContentCommand', 'postCreateCommand', 'postStartCommand', 'hostRequirements',
]);

/** One command to run in the guest. A string runs through `/bin/sh -c`, as the spec says. */
export interface GuestCommand {
  /** The key when the command came from the object form. */
  label?: string;
  argv: string[];
}

const argv = z.array(z.string(), { errorMap: () => ({ message: 'expected a command string or an array of strings' }) })
  .min(1, 'expected a non-empty array of strings');
const oneCommand = z.union([z.string().min(1), argv], { errorMap: () => ({ message: 'expected a command string or an array of strings' }) });

const command = z.union([oneCommand, z.record(oneCommand)], {
  errorMap: () => ({ message: 'expected a command string, an array of strings or an object of named commands' }),
}).transform((value): GuestCommand[] => {
  const toArgv = (c: string | string[]) => (typeof c === 'string' ? ['/bin/sh', '-c', c] : c);
  if (typeof value === 'string' || Array.isArray(value)) return [{ argv: toArgv(value) }];
  return Object.entries(value).map(([label, c]) => ({ label, argv: toArgv(c) }));
});

const portNumber = z.number().int().min(1).max(65535);
const forwardPort = z.union([portNumber, z.string().regex(/^(localhost|127\.0\.0\.1):\d{1,5}$/, 'expected a port number from 1 to 65535 or "localhost:PORT"')], {
  errorMap: () => ({ message: 'expected a port number from 1 to 65535 or "localhost:PORT"' }),
}).transform((p) => (typeof p === 'number' ? p : Number(p.slice(p.indexOf(':') + 1))))
  .refine((p) => p >= 1 && p <= 65535, 'expected a port number from 1 to 65535');

export const AUTO_FORWARD_ACTIONS = ['notify', 'openBrowser', 'silent', 'ignore'] as const;
export type AutoForwardAction = (typeof AUTO_FORWARD_ACTIONS)[number];

const portAttributes = z.object({
  label: z.string().optional(),
  onAutoForward: z.enum(AUTO_FORWARD_ACTIONS).optional(),
}).passthrough();

const env = z.record(z.string().regex(/^[^=\0]+$/, 'expected a variable name without "="'), z.string());

const absolutePath = z.string().regex(/^\/[^\0]*$/, 'expected an absolute guest path such as "/workspaces/app"');

/** `"source=name,target=/path,type=volume"` or `{source, target, type}`; only volumes are supported. */
const volumeMount = z.union([
  z.string().transform((s) => Object.fromEntries(s.split(',').map((part) => {
    const at = part.indexOf('=');
    return at < 0 ? [part.trim(), ''] : [part.slice(0, at).trim(), part.slice(at + 1).trim()];
  }))),
  z.record(z.unknown()),
], { errorMap: () => ({ message: 'expected "source=NAME,target=/PATH,type=volume" or an object' }) }).pipe(z.object({
  source: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected a volume name (letters, digits, "_", ".", "-")'),
  target: absolutePath,
  type: z.literal('volume'),
}).passthrough()).transform((m) => ({ name: m.source, target: m.target }));

const memory = z.union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?\s*(tb|gb|mb|kb)?$/i)], {
  errorMap: () => ({ message: 'expected a size such as "4gb" or "512mb"' }),
}).transform(memoryMib);

export const devcontainerSchema = z.object({
  name: z.string().optional(),
  image: z.string().min(1).optional(),
  forwardPorts: z.array(forwardPort).default([]),
  portsAttributes: z.record(z.string().regex(/^\d{1,5}(-\d{1,5})?$/, 'expected a port or a range such as "3000-3010"'), portAttributes).default({}),
  containerEnv: env.default({}),
  remoteEnv: env.default({}),
  workspaceFolder: absolutePath.optional(),
  mounts: z.array(volumeMount).default([]),
  onCreateCommand: command.optional(),
  updateContentCommand: command.optional(),
  postCreateCommand: command.optional(),
  postStartCommand: command.optional(),
  hostRequirements: z.object({
    cpus: z.number().int().min(1).max(255).optional(),
    memory: memory.optional(),
  }).passthrough().optional(),
}).passthrough();

export type DevcontainerConfig = z.output<typeof devcontainerSchema>;
export type PortAttributes = z.output<typeof portAttributes>;

/** "4gb" -> 4096; a bare number is bytes, as in the spec. */
function memoryMib(value: number | string): number {
  if (typeof value === 'number') return Math.ceil(value / (1024 * 1024));
  const match = /^(\d+(?:\.\d+)?)\s*(tb|gb|mb|kb)?$/i.exec(value) as RegExpExecArray;
  const unit = (match[2] ?? '').toLowerCase();
  const factor = { tb: 1024 * 1024, gb: 1024, mb: 1, kb: 1 / 1024, '': 1 / (1024 * 1024) }[unit] as number;
  return Math.ceil(Number(match[1]) * factor);
}
