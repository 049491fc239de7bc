import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { LoadedCompose } from '../compose/load';
import type { ComposeService } from '../compose/types';
import type { MountSpec } from '../mount';
import type { BuildConfig } from './config';
import type { PortsConfig } from './ports';
import { Problems, quote } from './problems';
import type { ResolvedConfig } from './resolve';
import { VOLUME_SIZE_MIB } from './volume-size';

/**
 * What a compose workspace runs besides its own VM: the other services, each its own microVM,
 * in start order (dependencies first), and what devcontainer.json asks of them.
 */
export interface ComposePlan {
  /** The compose project's name: named volumes are the project's (`<project>_<volume>`). */
  project: string;
  /** The workspace's own service (its VM is the workspace VM). */
  primary: string;
  /** Every other service to start, dependencies first. */
  services: ComposeService[];
  /** The primary's own dependencies, by name, with their conditions: the workspace VM starts after them. */
  primaryDependsOn: ComposeService['dependsOn'];
  /** The primary's declared ports: the other services reach them by its name. */
  primaryPorts: number[];
  /** `forwardPorts: ["db:5432"]`: host 127.0.0.1:port reaches the service's port. */
  forwards: Array<{ service: string; port: number }>;
  /**
   * overrideCommand false: the primary's own main process, run in the workspace VM once it is
   * up: its entrypoint and command (combined with its image's as docker does) in its working_dir.
   */
  primaryMain?: { entrypoint?: string[]; command?: string[]; workingDir?: string };
  /** `network_mode: service:db` on the primary: db's declared ports are reachable on the workspace VM's localhost. */
  primaryNetworkOf?: string;
}

/** The fields of the workspace plan that the primary service decides. */
export interface PrimaryServicePlan {
  source: { kind: 'image'; ref: string | undefined } | { kind: 'dockerfile'; build: BuildConfig };
  containerEnv: Record<string, string>;
  containerUser?: string;
  /** The workspace share (where the primary's binds put the folder) first, then binds inside it. */
  mounts: MountSpec[];
  volumes: Array<{ name: string; mountPoint: string; sizeMib: number }>;
  tmpfs: Array<{ target: string; sizeMib?: number }>;
  publish: PortsConfig['publish'];
  forward: number[];
  compose: ComposePlan;
  /** The primary service's `platform`, for an image it pulls as it is. */
  platform?: string;
}

export interface ComposePlanInputs {
  resolved: ResolvedConfig;
  loaded: LoadedCompose;
  /** Makes a share of a host folder inside the workspace (the settings' symlink policy, protections). */
  share(hostPath: string, guestPath: string, readOnly: boolean): MountSpec;
  problems: Problems;
}

/**
 * The workspace VM from the compose project's primary service: its image or build, its
 * environment (devcontainer.json's containerEnv wins), its user, binds (inside the folder only,
 * checked when the files were read), named volumes and published ports; every other service
 * to start goes to `compose`. Undefined when the project cannot start (its problems say why).
 */
export function planPrimaryService(inputs: ComposePlanInputs): PrimaryServicePlan | undefined {
  const { resolved, loaded, problems } = inputs;
  const { config, folder } = resolved;
  const compose = config.compose;
  const project = loaded.project;
  const primary = project && compose ? project.services[compose.service] : undefined;
  if (!compose || !project || !primary || loaded.problems.some((p) => p.severity === 'error')) return undefined;
  const volumeName = (source: string | undefined, target: string) =>
    `${project.name}_${source ?? `anon-${shortHash(`${primary.name}:${target}`)}`}`;
  const mounts: MountSpec[] = [];
  const volumes: PrimaryServicePlan['volumes'] = [];
  for (const volume of primary.volumes) {
    if (volume.type === 'bind') {
      const mount = inputs.share(volume.source, volume.target, volume.readOnly);
      // The folder itself is the workspace share (file events on); other binds follow it.
      if (volume.source === folder) mounts.unshift({ ...mount, fileEvents: true });
      else mounts.push(mount);
    } else {
      volumes.push({
        name: safeVolumeName(volumeName(volume.source, volume.target)),
        mountPoint: volume.target,
        sizeMib: VOLUME_SIZE_MIB,
      });
    }
  }
  if (!mounts.some((m) => m.hostPath === folder)) {
    mounts.unshift({ ...inputs.share(folder, resolved.containerWorkspaceFolder, false), fileEvents: true });
    problems.add(
      'info',
      'compose-folder-shared',
      '$.dockerComposeFile',
      `service ${quote(primary.name)} mounts no volume holding the workspace folder`,
      `the folder is shared at ${resolved.containerWorkspaceFolder} (workspaceFolder) all the same`,
    );
  }
  const publish: PortsConfig['publish'] = [];
  const forward: number[] = [];
  for (const port of primary.ports) {
    if (port.protocol !== 'tcp') continue;
    if (port.published) publish.push({ hostPort: port.published, guestPort: port.target });
    else forward.push(port.target);
  }
  const started = new Set(loaded.start);
  const forwards: ComposePlan['forwards'] = [];
  for (const { service, port } of config.ports.servicePorts) {
    if (service === primary.name) forward.push(port);
    else if (started.has(service)) forwards.push({ service, port });
    else {
      problems.add(
        'warning',
        'service-port',
        '$.forwardPorts',
        `"${service}:${port}" names ${project.services[service] ? 'a service that does not start (runServices, profiles)' : 'no service of the compose project'}`,
        'not forwarded',
      );
    }
  }
  const overrideCommand = config.overrideCommand ?? true;
  const primaryMain = overrideCommand
    ? undefined
    : {
        ...(primary.entrypoint ? { entrypoint: primary.entrypoint } : {}),
        ...(primary.command ? { command: primary.command } : {}),
        ...(primary.workingDir ? { workingDir: primary.workingDir } : {}),
      };
  if (overrideCommand && primary.workingDir) {
    // Dev Containers opens terminals and runs hooks in workspaceFolder, not in working_dir; the
    // only process working_dir would start is the command overrideCommand replaces.
    problems.add(
      'info',
      'compose-working-dir-unused',
      '$.overrideCommand',
      `service ${quote(primary.name)} sets working_dir ${quote(primary.workingDir)}, the directory of its own command, which overrideCommand (default true) replaces`,
      `not used: terminals and lifecycle commands start in workspaceFolder (${resolved.containerWorkspaceFolder}); set overrideCommand false to run the service's command there`,
    );
  }
  shutdownActionProblem(config.shutdownAction, problems);
  return {
    source: primary.build
      ? {
          kind: 'dockerfile',
          build: {
            dockerfile: path.resolve(primary.build.context, primary.build.dockerfile),
            context: primary.build.context,
            args: primary.build.args,
            cacheFrom: [],
            options: [],
            ...(primary.build.target ? { target: primary.build.target } : {}),
          },
        }
      : { kind: 'image', ref: primary.image },
    containerEnv: { ...primary.environment, ...config.containerEnv },
    ...((config.containerUser ?? primary.user) ? { containerUser: config.containerUser ?? primary.user } : {}),
    mounts,
    volumes,
    tmpfs: primary.tmpfs,
    publish,
    forward,
    ...(primary.platform ? { platform: primary.platform } : {}),
    compose: {
      project: project.name,
      primary: primary.name,
      services: loaded.start.flatMap((name) => (name === primary.name ? [] : (project.services[name] ?? []))),
      primaryDependsOn: primary.dependsOn,
      primaryPorts: declaredPorts(primary),
      forwards,
      ...(primaryMain ? { primaryMain } : {}),
      ...(primary.network?.mode === 'service' ? { primaryNetworkOf: primary.network.service } : {}),
    },
  };
}

/**
 * `shutdownAction` decides, in Dev Containers, whether closing the window stops the compose
 * containers. Here the services are part of the workspace: they run as long as its VM, which
 * outlives the window for the next one (the supervisor's idle stop), and stop with it. So
 * "none" gets what it asks (the services keep running once the last window detaches, until
 * the idle stop, never with 0, or `microvm down`), and "stopCompose"/"stopContainer" do not
 * stop them at the window's close: stopping the services of a VM kept for the next window
 * would hand that window a workspace whose database is gone. Either way the user is told.
 */
function shutdownActionProblem(action: string | undefined, problems: Problems): void {
  if (action === undefined) return;
  const lifetime =
    'the services live as long as the workspace VM, which keeps running with no window attached until microvm.idleStopMinutes (--idle-stop-minutes; 0 = never) passes, MicroVM: Stop or microvm down, and they stop with it';
  if (action === 'none')
    problems.add(
      'info',
      'compose-shutdown-action',
      '$.shutdownAction',
      'shutdownAction is "none": the services keep running when the window closes',
      `honoured: ${lifetime}`,
    );
  else
    problems.add(
      'info',
      'compose-shutdown-action',
      '$.shutdownAction',
      `shutdownAction is ${quote(action)}: stop the services when the window closes`,
      `not at the window's close: ${lifetime}; the next window finds them running`,
    );
}

/** Volume names are at most 64 characters of letters, digits and `._-`; a longer project name is cut and keeps a hash. */
export function safeVolumeName(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return clean.length <= 48 ? clean : `${clean.slice(0, 39)}-${shortHash(name)}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/** The TCP ports other VMs may reach: `expose` and the service side of `ports`. */
export function declaredPorts(service: ComposeService): number[] {
  return [
    ...new Set([...service.expose, ...service.ports.filter((p) => p.protocol === 'tcp').map((p) => p.target)]),
  ].sort((a, b) => a - b);
}
