import { z } from 'zod';
import {
  BUILDER_IMAGE_ENV,
  formatMirrorList,
  Language,
  LANGUAGES,
  MIRRORS_ENV,
  parseMirrorList,
  RegistryMirrors,
} from '../../engine/index';

/** The `microvm.*` settings, read through a getter so that tests need no VS Code. */
export interface Settings {
  /** An image reference; '' means the engine's embedded default image. */
  image: string;
  memoryMib: number;
  cpus: number;
  network: 'outbound' | 'none' | 'allowlist' | 'learn';
  /** Patterns network allowlist may reach, beyond the presets. */
  allowedHosts: string[];
  allowedHostsPresets: boolean;
  /** network allowlist: ask about a host outside the list (Allow Once, Always, Deny) instead of refusing it silently. */
  askForHosts: boolean;
  symlinks: 'opaque' | 'deny' | 'follow';
  accelerator: 'auto' | 'kvm' | 'tcg' | 'hvf';
  allowEmulation: boolean;
  /** Most memory a workspace may take without asking; 0 = half of this machine's RAM. */
  maxMemoryMib: number;
  /** Most CPUs a workspace may take without asking; 0 = all of them. */
  maxCpus: number;
  /** Names protected at any depth in the shared folder, beyond the engine's default list. */
  protectedNames: string[];
  /** 'writable': git's everyday data in .git is writable from the VM; 'strict': none of .git is. */
  gitAccess: 'writable' | 'strict';
  /** Host environment variables `${localEnv:NAME}` may pass into the VM (`microvm.localEnv.allow`). */
  localEnvAllow: string[];
  /** Language -> image for folders without a devcontainer.json ('' = the embedded default image). */
  defaultImages: Record<string, string>;
  /** Registry host -> mirror URLs tried before it, as MICROVM_REGISTRY_MIRRORS has them. */
  registryMirrors: Record<string, string[]>;
  /** The image with buildah that builds Dockerfiles and features ('' = the one setup made), as MICROVM_BUILDER_IMAGE. */
  builderImage: string;
  /** The host's extra CAs the guest trusts: 'auto', 'off', or PEM files. */
  trustHostCertificates: 'auto' | 'off' | string[];
  /** Project the VM's node_modules types (declarations, trimmed package.json) onto the host folder for host TypeScript. */
  typeProjection: boolean;
  /** Minutes the workspace VM keeps running with no window or CLI attached (0 = until Stop). */
  idleStopMinutes: number;
}

const settingsSchema = z.object({
  image: z.string().catch(''),
  memoryMib: z
    .number()
    .int()
    .min(64)
    .max(1024 * 1024)
    .catch(1024),
  cpus: z.number().int().min(1).max(255).catch(2),
  network: z.enum(['outbound', 'none', 'allowlist', 'learn']).catch('outbound'),
  allowedHosts: z.array(z.string().min(1).max(253)).max(256).catch([]),
  allowedHostsPresets: z.boolean().catch(true),
  askForHosts: z.boolean().catch(true),
  symlinks: z.enum(['opaque', 'deny', 'follow']).catch('opaque'),
  accelerator: z.enum(['auto', 'kvm', 'tcg', 'hvf']).catch('auto'),
  allowEmulation: z.boolean().catch(false),
  maxMemoryMib: z.number().int().min(0).catch(0),
  maxCpus: z.number().int().min(0).catch(0),
  protectedNames: z
    .array(
      z
        .string()
        .min(1)
        .max(255)
        .refine((n) => !n.includes('/') && n !== '.' && n !== '..'),
    )
    .max(32)
    .catch([]),
  gitAccess: z.enum(['writable', 'strict']).catch('writable'),
  localEnvAllow: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
    .max(64)
    .catch([]),
  defaultImages: z.record(z.enum(LANGUAGES as [Language, ...Language[]]), z.string().max(1024)).catch({}),
  registryMirrors: z.record(z.string().min(1).max(255), z.array(z.string().min(1).max(2048)).max(8)).catch({}),
  builderImage: z.string().max(1024).catch(''),
  trustHostCertificates: z.union([z.enum(['auto', 'off']), z.array(z.string().min(1).max(4096)).max(32)]).catch('auto'),
  typeProjection: z.boolean().catch(true),
  idleStopMinutes: z
    .number()
    .min(0)
    .max(7 * 24 * 60)
    .catch(30),
});

export const SETTING_KEYS = Object.keys(settingsSchema.shape) as Array<keyof Settings>;

/** Settings whose name under `microvm.` differs from their key here. */
const SETTING_NAMES: Partial<Record<keyof Settings, string>> = { localEnvAllow: 'localEnv.allow' };

/**
 * Settings read from the user's own settings only, whatever a folder's `.vscode/settings.json`
 * or workspace file says (they are also machine-scoped in package.json, which VS Code enforces):
 * a repository naming host variables here would carry the host's secrets into its VM.
 */
export const USER_ONLY_SETTINGS: ReadonlySet<string> = new Set(['localEnv.allow']);

/** What VS Code's `inspect` returns, in the part the reader needs. */
export interface SettingValues {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** The value of one setting: a user-only one from the user's settings, any other as VS Code merges it. */
export function settingValue(name: string, merged: unknown, values: SettingValues | undefined): unknown {
  return USER_ONLY_SETTINGS.has(name) ? values?.globalValue : merged;
}

/** A bad value falls back to the default, as VS Code does for settings it validates. `get` takes the name under `microvm.`. */
export function readSettings(get: (name: string) => unknown): Settings {
  return settingsSchema.parse(Object.fromEntries(SETTING_KEYS.map((key) => [key, get(SETTING_NAMES[key] ?? key)])));
}

/** The engine reads MICROVM_ACCEL once per process: 'auto' leaves the choice to it. */
export function accelEnv(settings: Settings): string | undefined {
  return settings.accelerator === 'auto' ? undefined : settings.accelerator;
}

/**
 * MICROVM_REGISTRY_MIRRORS for this window: the setting's mirrors first, then those of the
 * environment VS Code was started with. Every pull of the engine (images, features, a
 * Dockerfile's FROM) reads it. Undefined when neither names any. Throws E_BAD_OPTION naming a
 * bad entry of the setting.
 */
export function mirrorsEnv(settings: Settings, inherited: string | undefined): string | undefined {
  const own: RegistryMirrors = parseMirrorList(
    formatMirrorList(settings.registryMirrors),
    'the microvm.registryMirrors setting',
  );
  const merged: Record<string, string[]> = Object.fromEntries(Object.entries(own).map(([k, v]) => [k, [...v]]));
  for (const [registry, urls] of Object.entries(inherited ? parseMirrorList(inherited) : {})) {
    const list = (merged[registry] ??= []);
    list.push(...urls.filter((u) => !list.includes(u)));
  }
  const text = formatMirrorList(merged);
  return text || undefined;
}

export { MIRRORS_ENV, BUILDER_IMAGE_ENV };

/** MICROVM_BUILDER_IMAGE for this window: the setting when it names one, else the one VS Code started with. */
export function builderImageEnv(settings: Settings, inherited: string | undefined): string | undefined {
  return settings.builderImage.trim() || inherited || undefined;
}
