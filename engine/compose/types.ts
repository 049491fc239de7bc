/**
 * A compose project as the workspace runs it: each service normalised to what a microVM
 * needs, with paths absolute and checked, environments merged, and what cannot be honoured
 * already reported as problems.
 */
export interface ComposeProject {
  /** `name:` in the files, else the folder's name with `_devcontainer`, as the reference CLI names it. */
  name: string;
  /** The compose files in merge order (absolute). */
  files: string[];
  services: Record<string, ComposeService>;
  /** Named volumes the files declare at the top level. */
  volumes: string[];
}

/** A compose service as the workspace runs it, in a VM of its own. */
export interface ComposeService {
  name: string;
  image?: string;
  build?: ComposeBuild;
  /** Environment after env_file and environment are merged; values are literal. */
  environment: Record<string, string>;
  workingDir?: string;
  user?: string;
  /** argv, or a shell string when the file wrote the command as `["sh", "-c", ...]` */
  command?: string[];
  entrypoint?: string[];
  ports: ComposePort[];
  /** Ports other services may reach: `expose` and the container side of `ports`. */
  expose: number[];
  volumes: ComposeVolume[];
  tmpfs: Array<{ target: string; sizeMib?: number }>;
  dependsOn: Record<string, { condition: DependsOnCondition; required: boolean }>;
  healthcheck?: HealthCheck;
  profiles: string[];
  /** network_mode: `none`, or `service:X` (the templates' way to reach X's ports on localhost). */
  network?: { mode: 'none' } | { mode: 'service'; service: string };
  /** mem_limit or deploy.resources.limits.memory, for the service's VM. */
  memoryMib?: number;
  /** cpus or deploy.resources.limits.cpus, rounded up to whole vCPUs. */
  cpus?: number;
  /** `platform` of an image service (`linux/arm64`): which manifest of the image is pulled. */
  platform?: string;
}

/** A compose service's `build`: its context, Dockerfile, build args and target. */
export interface ComposeBuild {
  /** Absolute, inside the workspace folder. */
  context: string;
  /** Relative to the context, as the files wrote it (default `Dockerfile`). */
  dockerfile: string;
  args: Record<string, string>;
  target?: string;
}

/** A port a compose service lists. */
export interface ComposePort {
  /** The port inside the service. */
  target: number;
  /** The host port asked for, if any: the workspace forwards it on 127.0.0.1 only. */
  published?: number;
  protocol: 'tcp' | 'udp';
}

/** A compose service's volume: a named volume (a disk of the workspace) or a bind of a folder path. */
export type ComposeVolume =
  | { type: 'volume'; source?: string; target: string; readOnly: boolean }
  /** A bind of a path inside the workspace folder (absolute on the host). */
  | { type: 'bind'; source: string; target: string; readOnly: boolean };

/** What `depends_on` waits for before a service starts. */
export type DependsOnCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

/** A compose service's health check, in milliseconds. */
export interface HealthCheck {
  /** argv run directly, or `['/bin/sh', '-c', text]` for CMD-SHELL and a plain string. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
  startIntervalMs: number;
}
