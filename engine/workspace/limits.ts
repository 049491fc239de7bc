import * as os from 'node:os';

/**
 * What one workspace VM may take from this host without asking: half the RAM, every CPU,
 * a few volumes of bounded size. A configuration asking for more gets a question, not the
 * host (a repository once asked for 1 TiB of memory and got it).
 */
export interface HostLimits {
  memoryMib: number;
  cpus: number;
  volumes: number;
  volumeMib: number;
}

/** The most volumes a workspace may have. */
export const MAX_VOLUMES = 8;
/** The largest volume a workspace may ask for, in MiB. */
export const MAX_VOLUME_MIB = 64 * 1024;

/** What a VM may take from this host without asking: half the RAM and every CPU, or less when the user set a maximum. */
export function hostLimits(user: { maxMemoryMib?: number; maxCpus?: number } = {}): HostLimits {
  const halfRam = Math.floor(os.totalmem() / 2 / (1024 * 1024));
  const cpus = os.availableParallelism();
  return {
    memoryMib: user.maxMemoryMib ? Math.min(user.maxMemoryMib, halfRam) : halfRam,
    cpus: user.maxCpus ? Math.min(user.maxCpus, cpus) : cpus,
    volumes: MAX_VOLUMES,
    volumeMib: MAX_VOLUME_MIB,
  };
}

/** A request beyond a limit: what was asked, what is allowed, in words for the user. */
export interface OverLimit {
  what: 'memory' | 'cpus' | 'volumes' | 'volume size';
  asked: number;
  allowed: number;
  message: string;
}

/** What a workspace asks of the host: memory, CPUs and its volumes. */
export interface ResourceRequest {
  memoryMib: number;
  cpus: number;
  volumes: Array<{ name: string; sizeMib: number }>;
}

/** Every way `request` exceeds `limits` (pure). */
export function overLimits(request: ResourceRequest, limits: HostLimits): OverLimit[] {
  const over: OverLimit[] = [];
  if (request.memoryMib > limits.memoryMib) {
    over.push({
      what: 'memory',
      asked: request.memoryMib,
      allowed: limits.memoryMib,
      message: `memory ${mib(request.memoryMib)} asked, this host allows ${mib(limits.memoryMib)} (half its RAM, or microvm.maxMemoryMib)`,
    });
  }
  if (request.cpus > limits.cpus) {
    over.push({
      what: 'cpus',
      asked: request.cpus,
      allowed: limits.cpus,
      message: `${request.cpus} CPUs asked, this host allows ${limits.cpus}`,
    });
  }
  if (request.volumes.length > limits.volumes) {
    over.push({
      what: 'volumes',
      asked: request.volumes.length,
      allowed: limits.volumes,
      message: `${request.volumes.length} volumes asked, at most ${limits.volumes} are attached`,
    });
  }
  for (const volume of request.volumes) {
    if (volume.sizeMib > limits.volumeMib) {
      over.push({
        what: 'volume size',
        asked: volume.sizeMib,
        allowed: limits.volumeMib,
        message: `volume ${JSON.stringify(volume.name)} of ${mib(volume.sizeMib)} asked, at most ${mib(limits.volumeMib)} each`,
      });
    }
  }
  return over;
}

/** The request cut down to the limits. */
export function clampToLimits<T extends ResourceRequest>(request: T, limits: HostLimits): T {
  return {
    ...request,
    memoryMib: Math.min(request.memoryMib, limits.memoryMib),
    cpus: Math.min(request.cpus, limits.cpus),
    volumes: request.volumes
      .slice(0, limits.volumes)
      .map((v) => ({ ...v, sizeMib: Math.min(v.sizeMib, limits.volumeMib) })),
  };
}

function mib(value: number): string {
  return value >= 1024 ? `${(value / 1024).toFixed(value % 1024 === 0 ? 0 : 1)} GiB` : `${value} MiB`;
}
