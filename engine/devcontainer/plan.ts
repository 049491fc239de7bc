import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GitPolicy, MountSpec, SymlinkPolicy } from '../mount';
import { hooksPathsOf } from '../mount/git-hooks';
import { protectedPart } from '../mount/view';
import type { NetworkMode } from '../qemu/network';
import type { TrustSetting } from '../workspace/host-certificates';
import { planEgress } from './egress';
import { isLocalImageRef } from '../image/source';
import type { BuildConfig, UserEnvProbe } from './config';
import { readBuildOptions } from './build-options';
import type { ResolvedFeatures } from '../features/resolve';
import type { ResolvedFeature } from '../features/types';
import {
  featureEntries,
  featureProblems,
  mergedCustomizations,
  MetadataHooks,
  metadataHooks,
  metadataMounts,
  metadataProblems,
} from './image-metadata';
import { DetectedLanguage, LANGUAGE_NAMES, languageImage } from './language';
import { Hook, LifecycleCommand, WaitFor } from './lifecycle';
import { parseMount, ParsedMount } from './mounts';
import { PortsConfig } from './ports';
import { Problem, Problems, quote } from './problems';
import { ResolvedConfig } from './resolve';
import { readRunArgs } from './run-args';
import { VOLUME_SIZE_MIB } from './volume-size';
import { planPrimaryService } from './compose-plan';
import type { ComposePlan } from './compose-plan';
import type { LoadedCompose } from '../compose/load';

/** What the user's settings decide when the configuration does not (VS Code settings, CLI flags). */
export interface PlanSettings {
  /**
   * An image reference for folders without a configuration; '' = the image for the folder's
   * language (`defaultImages`), else the embedded default image.
   */
  image: string;
  /** Language -> image for folders without a configuration (DEFAULT_LANGUAGE_IMAGES where unset; '' = none). */
  defaultImages?: Partial<Record<string, string>>;
  memoryMib: number;
  cpus: number;
  network: NetworkMode;
  symlinks: SymlinkPolicy;
  protect: string[];
  git: GitPolicy;
  /** `microvm.allowedHosts`, `microvm.allowedHostsPresets` and whether the folder is trusted: see egress.ts. */
  allowedHosts?: readonly string[];
  allowedHostsPresets?: boolean;
  trusted?: boolean;
  /** The host's extra CAs for the guest (engine/workspace/host-certificates.ts); default `auto`. */
  trustCertificates?: TrustSetting;
}

/** Where the workspace's image comes from: a reference, a Dockerfile build, or compose. */
export type ImageSource =
  /**
   * `language`: the image was chosen for what the folder holds (it has no configuration); if
   * it cannot be pulled, the folder opens on the embedded default image instead.
   */
  | { kind: 'image'; ref: string | undefined; language?: DetectedLanguage }
  /** Paths are absolute on the host. */
  | { kind: 'dockerfile'; build: BuildConfig };

/** Everything one workspace VM needs, decided without side effects. */
export interface WorkspacePlan {
  source: ImageSource;
  memoryMib: number;
  vcpus: number;
  network: NetworkMode;
  /** network 'allowlist': the host names the VM may reach (presets, settings, the workspace's approved list). */
  allow: string[];
  /** Where the workspace's egress log goes, and its host folder (set when the workspace is prepared). */
  egressLog?: string;
  hostFolder?: string;
  trustCertificates: TrustSetting;
  /** May still hold `${containerEnv:...}` until the image's environment is known. */
  containerEnv: Record<string, string>;
  remoteEnv: Record<string, string | null>;
  workspaceFolder: string;
  /** The workspace share first, then bind mounts of folders inside it. */
  mounts: MountSpec[];
  /** Names as the configuration gives them: the workspace namespaces them. */
  volumes: Array<{ name: string; mountPoint: string; sizeMib: number }>;
  tmpfs: Array<{ target: string; sizeMib?: number }>;
  /** devcontainer.json's hooks. */
  hooks: Partial<Record<Hook, LifecycleCommand>>;
  /** Hooks of the image's metadata and the features, in order: each runs before devcontainer.json's. */
  metadataHooks: MetadataHooks;
  /** The features to install on the image, in install order (empty: the image as it is). */
  features: ResolvedFeature[];
  /** Per tool, the features' customizations, then devcontainer.json's. */
  customizations: Record<string, unknown[]>;
  waitFor: WaitFor;
  ports: PortsConfig;
  containerUser?: string;
  remoteUser?: string;
  updateRemoteUserUID: boolean;
  userEnvProbe: UserEnvProbe;
  /** Guest /etc/hosts entries (`--add-host`). */
  hosts: Array<{ name: string; address: string }>;
  /** runArgs' `--platform` for an image pulled as it is (`linux/arm64`); absent = this host's platform. */
  platform?: string;
  /** The configuration's problems and the plan's own (mounts skipped, features not built, ...). */
  problems: Problem[];
  /** A compose workspace: the other services, each its own VM (engine/workspace/services). */
  compose?: ComposePlan;
}

export { VOLUME_SIZE_MIB };

/** What the folder holds, read by the caller (engine/devcontainer/language.ts). */
export interface FolderFacts {
  /** Most specific first. */
  languages: DetectedLanguage[];
}

/**
 * Whether a share of `hostPath` starts at or inside a protected name of the folder (`.git`,
 * `.vscode`, `.devcontainer`, a hooks directory): the filter view protects names below a
 * share's root, so such a share is made read-only, and the problems say so.
 */
function protectedShare(
  folder: string,
  hostPath: string,
  guestPath: string,
  protect: readonly string[],
  hooksPaths: readonly string[],
  problems: Problems,
): boolean {
  const part = protectedPart(folder, hostPath, protect, hooksPaths);
  if (part === undefined) return false;
  problems.add(
    'warning',
    'mount-protected',
    '$.mounts',
    `the bind of ${quote(hostPath)} at ${quote(guestPath)} is in ${quote(part)}, which host tools run or trust`,
    'shared read-only: the VM may read it, not change it',
  );
  return true;
}

/**
 * The plan for a resolved configuration, the user's settings, what the folder holds and its
 * features (resolveFeatures; undefined when they were not resolved, as in read-configuration).
 */
export function planWorkspace(
  resolved: ResolvedConfig,
  settings: PlanSettings,
  facts: FolderFacts,
  features?: ResolvedFeatures,
  compose?: LoadedCompose,
): WorkspacePlan {
  const problems = new Problems();
  problems.list.push(...resolved.problems);
  if (features) problems.list.push(...featureProblems(features));
  const { config, folder } = resolved;
  const entries = featureEntries(features?.features ?? [], resolved.devcontainerId);
  metadataProblems(entries, problems);
  const runArgs = readRunArgs(config.runArgs, folder, problems);
  const workspaceFolder = resolved.containerWorkspaceFolder;
  const hooksPaths = hooksPathsOf(folder);
  const share = (hostPath: string, guestPath: string, readOnly: boolean): MountSpec => ({
    hostPath,
    guestPath,
    readOnly: readOnly || protectedShare(folder, hostPath, guestPath, settings.protect, hooksPaths, problems),
    symlinks: settings.symlinks,
    filter: true,
    protect: settings.protect,
    protectPaths: [],
    git: settings.git,
  });
  const mounts: MountSpec[] = [];
  if (compose) problems.list.push(...compose.problems);
  const primary = compose ? planPrimaryService({ resolved, loaded: compose, share, problems }) : undefined;
  // A compose workspace's share is where its service mounts the folder; workspaceMount is not used.
  const primaryShare = primary?.mounts[0]; // planPrimaryService always puts the workspace share first
  const workspaceMount = primaryShare
    ? { hostPath: primaryShare.hostPath, guestPath: primaryShare.guestPath }
    : planWorkspaceMount(resolved, problems);
  // The workspace folder relays host edits as guest file events (watchers, `node --watch`, HMR).
  if (primary) mounts.push(...primary.mounts);
  else if (workspaceMount)
    mounts.push({ ...share(workspaceMount.hostPath, workspaceMount.guestPath, false), fileEvents: true });
  const volumes: WorkspacePlan['volumes'] = [];
  if (workspaceMount) {
    volumes.push({
      name: 'node_modules',
      mountPoint: `${workspaceMount.guestPath}/node_modules`,
      sizeMib: VOLUME_SIZE_MIB,
    });
    if (facts.languages.some((l) => l.language === 'python'))
      volumes.push({ name: 'venv', mountPoint: `${workspaceMount.guestPath}/.venv`, sizeMib: VOLUME_SIZE_MIB });
  }
  const tmpfs: WorkspacePlan['tmpfs'] = [];
  if (primary) {
    volumes.push(...primary.volumes);
    tmpfs.push(...primary.tmpfs);
  }
  const rawMounts = Array.isArray(resolved.raw?.mounts) ? (resolved.raw.mounts as unknown[]) : [];
  const mountEntries: Array<{ value: unknown; at: string; written?: unknown }> = [
    ...metadataMounts(entries),
    ...config.mounts.map((m, i) => ({ value: m, at: `$.mounts[${i}]`, written: rawMounts[i] })),
    ...runArgs.mounts.map((m) => ({ value: m, at: '$.runArgs' })),
  ];
  for (const { value, at, written } of mountEntries) {
    const mount = parseMount(value);
    if ('error' in mount) {
      problems.add('warning', 'invalid-mount', at, `${mount.error} (${quote(value)})`, 'this mount is skipped');
      continue;
    }
    placeMount(mount, at, folder, { share, mounts, volumes, tmpfs }, problems, writtenSource(written, mount));
  }
  problems.list.push(...sourceProblems(resolved, features !== undefined, compose !== undefined));
  const ports: PortsConfig = {
    ...config.ports,
    forward: [...new Set([...config.ports.forward, ...(primary?.forward ?? [])])],
    publish: [...config.ports.publish, ...runArgs.publish, ...(primary?.publish ?? [])],
  };
  if (!config.compose) {
    for (const { service, port } of config.ports.servicePorts) {
      problems.add(
        'warning',
        'service-port',
        '$.forwardPorts',
        `"${service}:${port}" names a compose service, and the configuration has no dockerComposeFile`,
        'not forwarded',
      );
    }
  }
  const source = primary?.source ?? imageSource(resolved, settings, facts, problems);
  const platform = imagePlatform(
    primary
      ? { platform: primary.platform, at: '$.dockerComposeFile' }
      : { platform: runArgs.platform, at: '$.runArgs' },
    source,
    features?.features.length ?? 0,
    problems,
  );
  return {
    source,
    memoryMib: Math.max(settings.memoryMib, config.hostRequirements.memoryMib ?? 0, runArgs.memoryMib ?? 0),
    vcpus: Math.max(settings.cpus, config.hostRequirements.cpus ?? 0, runArgs.cpus ?? 0),
    ...planEgress(
      {
        network: settings.network,
        allowedHosts: settings.allowedHosts,
        presets: settings.allowedHostsPresets,
        trusted: settings.trusted,
      },
      config.customizations,
      facts.languages,
      problems,
    ),
    trustCertificates: settings.trustCertificates ?? 'auto',
    containerEnv: { ...runArgs.env, ...(primary?.containerEnv ?? config.containerEnv) },
    remoteEnv: config.remoteEnv,
    workspaceFolder,
    mounts,
    volumes,
    tmpfs,
    hooks: config.hooks,
    metadataHooks: metadataHooks(entries, problems),
    features: features?.features ?? [],
    customizations: mergedCustomizations(entries, config.customizations),
    waitFor: config.waitFor ?? 'updateContentCommand',
    ports,
    ...((primary?.containerUser ?? config.containerUser ?? runArgs.user)
      ? { containerUser: primary?.containerUser ?? config.containerUser ?? runArgs.user }
      : {}),
    ...(config.remoteUser ? { remoteUser: config.remoteUser } : {}),
    updateRemoteUserUID: config.updateRemoteUserUID ?? true,
    userEnvProbe: config.userEnvProbe ?? 'loginInteractiveShell',
    hosts: runArgs.hosts,
    ...(platform ? { platform } : {}),
    problems: problems.list,
    ...(primary ? { compose: primary.compose } : {}),
  };
}

/**
 * runArgs' `--platform` applies to an image taken as it is; a Dockerfile or features are built
 * in a VM of this host's platform, so there it is reported and not used.
 */
function imagePlatform(
  { platform, at }: { platform: string | undefined; at: string },
  source: ImageSource,
  featureCount: number,
  problems: Problems,
): string | undefined {
  if (platform === undefined) return undefined;
  if (source.kind === 'image' && featureCount === 0) return platform;
  problems.add(
    'warning',
    'run-arg',
    at,
    `platform ${quote(platform)} applies to an image used as it is`,
    source.kind === 'image'
      ? "ignored: features are installed in a VM of this machine's platform"
      : "ignored: the Dockerfile is built in a VM of this machine's platform",
  );
  return undefined;
}

/** The workspace share: `workspaceMount` when it names this folder (or one inside it), else the folder at workspaceFolder. */
function planWorkspaceMount(
  resolved: ResolvedConfig,
  problems: Problems,
): { hostPath: string; guestPath: string } | undefined {
  const written = resolved.config.workspaceMount;
  const fallback = { hostPath: resolved.folder, guestPath: resolved.containerWorkspaceFolder };
  if (written === undefined) return fallback;
  if (written.trim() === '') {
    problems.add(
      'warning',
      'no-workspace-mount',
      '$.workspaceMount',
      'workspaceMount is empty',
      'the folder is not shared with the VM',
    );
    return undefined;
  }
  const mount = parseMount(written);
  if ('error' in mount || mount.type !== 'bind' || !mount.source) {
    problems.add(
      'warning',
      'invalid-mount',
      '$.workspaceMount',
      `${'error' in mount ? mount.error : 'workspaceMount is not a bind mount'} (${quote(written)})`,
      `the folder is shared at ${resolved.containerWorkspaceFolder} instead`,
    );
    return fallback;
  }
  const inside = insideFolder(resolved.folder, mount.source);
  const parent = !inside ? folderWithin(resolved.folder, mount.source) : undefined;
  if (parent !== undefined) {
    // `source=${localWorkspaceFolder}/..` (a monorepo's or a multi-repo layout's parent): the
    // folder alone is shared where it would appear in that mount, and its siblings stay on the host.
    const guestPath = path.posix.join(mount.target, ...parent.split(path.sep));
    problems.add(
      'info',
      'workspace-mount-parent',
      '$.workspaceMount',
      `workspaceMount shares ${quote(mount.source)}, which holds the opened folder and other folders`,
      `only the opened folder is shared, at ${guestPath}; the rest stays on the host`,
    );
    return { hostPath: resolved.folder, guestPath };
  }
  if (!inside) {
    problems.add(
      'warning',
      'bind-outside-folder',
      '$.workspaceMount',
      `workspaceMount shares ${quote(mount.source)}, outside the opened folder`,
      `only the folder itself is shared, at ${mount.target}: the host stays out of the VM's reach`,
    );
    return { hostPath: resolved.folder, guestPath: mount.target };
  }
  return { hostPath: inside, guestPath: mount.target };
}

interface Placement {
  share(hostPath: string, guestPath: string, readOnly: boolean): MountSpec;
  mounts: MountSpec[];
  volumes: WorkspacePlan['volumes'];
  tmpfs: WorkspacePlan['tmpfs'];
}

/** The mount's source as the file writes it, when variables made it something else (`${localEnv:HOME}/.ssh` -> `/.ssh`). */
function writtenSource(written: unknown, mount: ParsedMount): string | undefined {
  if (written === undefined) return undefined;
  const parsed = parseMount(written);
  return 'error' in parsed || parsed.source === mount.source ? undefined : parsed.source;
}

/** What one mount becomes: a share (a folder inside the workspace), a volume, a tmpfs, or nothing (a host path). */
function placeMount(
  mount: ParsedMount,
  at: string,
  folder: string,
  into: Placement,
  problems: Problems,
  written?: string,
): void {
  if (mount.ignored.length > 0)
    problems.add('info', 'mount-options', at, `${mount.ignored.join(', ')} mean nothing in a VM`, 'ignored');
  removeTarget(into, mount.target);
  if (mount.type === 'tmpfs') {
    into.tmpfs.push({ target: mount.target, ...(mount.sizeMib ? { sizeMib: mount.sizeMib } : {}) });
    return;
  }
  if (mount.type === 'volume') {
    const name = mount.source ?? `anon-${createHash('sha256').update(mount.target).digest('hex').slice(0, 12)}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      problems.add(
        'warning',
        'invalid-mount',
        at,
        `volume name ${quote(name)} has characters a volume name cannot have`,
        'this mount is skipped',
      );
      return;
    }
    into.volumes.push({ name, mountPoint: mount.target, sizeMib: VOLUME_SIZE_MIB });
    return;
  }
  const inside = insideFolder(folder, mount.source as string);
  if (!inside) {
    problems.add(
      'warning',
      'bind-outside-folder',
      at,
      `a bind mount of ${quote(mount.source)}${written ? ` (written ${quote(written)})` : ''}, outside the opened folder`,
      'skipped: the VM gets nothing from the host beyond its folder (a Docker socket, SSH keys or host devices would hand it the host)',
    );
    return;
  }
  into.mounts.push(into.share(inside, mount.target, mount.readOnly));
}

/** A later mount at the same place wins, as in the spec (a default node_modules volume too); the workspace share stays. */
function removeTarget(into: Placement, target: string): void {
  const keep = <T>(list: T[], at: (item: T) => string, from = 0) => {
    for (let i = list.length - 1; i >= from; i--) if (at(list[i]!) === target) list.splice(i, 1);
  };
  keep(into.mounts, (m) => m.guestPath, 1);
  keep(into.volumes, (v) => v.mountPoint);
  keep(into.tmpfs, (t) => t.target);
}

/** Where `folder` lies inside `source` (a relative path, not empty), when source is one of its parents. */
function folderWithin(folder: string, source: string): string | undefined {
  let real: string;
  try {
    real = fs.realpathSync(path.resolve(folder, source));
  } catch {
    return undefined;
  }
  const relative = path.relative(real, folder);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? undefined : relative;
}

/** `source` as a real path inside `folder` (relative paths are the folder's), or undefined. */
function insideFolder(folder: string, source: string): string | undefined {
  let real: string;
  try {
    real = fs.realpathSync(path.resolve(folder, source));
  } catch {
    return undefined;
  }
  const relative = path.relative(folder, real);
  return relative.startsWith('..') || path.isAbsolute(relative) ? undefined : real;
}

/**
 * The image, or the Dockerfile build. The Dockerfile and the context must lie inside the
 * opened folder: the builder VM gets them, and nothing from outside the folder.
 */
function imageSource(
  resolved: ResolvedConfig,
  settings: PlanSettings,
  facts: FolderFacts,
  problems: Problems,
): ImageSource {
  const { config, configPath, folder } = resolved;
  if (!configPath) return defaultSource(settings, facts, problems);
  if (config.build?.dockerfile && configPath) {
    const base = path.dirname(configPath);
    const context = insideFolder(folder, path.resolve(base, config.build.context));
    const dockerfile = insideFolder(folder, path.resolve(base, config.build.dockerfile));
    if (context && dockerfile)
      return { kind: 'dockerfile', build: withBuildOptions({ ...config.build, dockerfile, context }, problems) };
    const [key, value] = context ? ['dockerfile', config.build.dockerfile] : ['context', config.build.context];
    const exists = fs.existsSync(path.resolve(base, value));
    problems.add(
      'error',
      exists ? 'build-outside-folder' : `missing-${key}`,
      `$.build.${key}`,
      `build.${key} ${quote(value)} ${exists ? 'is outside the opened folder' : `does not exist (relative to ${quote(path.relative(folder, base) || '.')})`}`,
      exists
        ? 'the image cannot be built: the builder VM gets files from inside the folder only'
        : 'the image cannot be built',
    );
  }
  if (config.image !== undefined && isLocalImageRef(config.image)) {
    // The repository is not trusted: a host directory or archive as its image would put host files in the VM.
    problems.add(
      'error',
      'image-host-path',
      '$.image',
      `image ${quote(config.image)} names a file or folder on this machine, not a registry image`,
      "the folder cannot open: a repository's configuration may not put host files in the VM. Name a registry image or build a Dockerfile inside the folder; " +
        'an image of your own on this machine goes in the microvm.image setting',
    );
    return { kind: 'image', ref: settings.image || undefined };
  }
  return { kind: 'image', ref: config.image ?? (settings.image || undefined) };
}

/**
 * A folder without a configuration: the microvm.image setting when it names one, else the
 * image for the folder's language (the first with an image), else the embedded default image.
 */
function defaultSource(settings: PlanSettings, facts: FolderFacts, problems: Problems): ImageSource {
  if (settings.image) return { kind: 'image', ref: settings.image };
  for (const detected of facts.languages) {
    const ref = languageImage(detected.language, settings.defaultImages);
    if (!ref) continue;
    problems.add(
      'info',
      'language-image',
      '$',
      `no devcontainer.json: ${detected.marker} makes this a ${LANGUAGE_NAMES[detected.language]} project, so it opens on ${ref}`,
      `another image: add a devcontainer.json, or set microvm.defaultImages.${detected.language}`,
    );
    return { kind: 'image', ref, language: detected };
  }
  return { kind: 'image', ref: undefined };
}

/** build.options folded into the build: their --build-arg and --target win, as docker takes later flags. */
function withBuildOptions(build: BuildConfig, problems: Problems): BuildConfig {
  if (build.options.length === 0) return build;
  const effect = readBuildOptions(build.options, problems);
  const target = effect.target ?? build.target;
  return {
    ...build,
    args: { ...build.args, ...effect.args },
    ...(target ? { target } : {}),
    ...(effect.pull ? { pull: true } : {}),
    ...(effect.network ? { network: effect.network } : {}),
  };
}

/** What the configuration asks for that this build cannot give yet, with what the user gets instead. */
function sourceProblems(resolved: ResolvedConfig, featuresResolved: boolean, composeLoaded: boolean): Problem[] {
  const problems = new Problems();
  const { config } = resolved;
  const features = Object.keys(config.features);
  if (features.length > 0 && !featuresResolved) {
    problems.add(
      'info',
      'features-not-resolved',
      '$.features',
      `features ${features.map((f) => quote(f)).join(', ')} are resolved when the workspace opens`,
      'their options, order and metadata are not checked here',
    );
  }
  if (config.compose && !composeLoaded) {
    problems.add(
      'info',
      'compose-not-loaded',
      '$.dockerComposeFile',
      `compose files ${config.compose.files.map((f) => quote(f)).join(', ')} (service ${quote(config.compose.service)}) are read when the workspace opens`,
      'their services, volumes and ports are not checked here',
    );
  }
  return problems.list;
}
