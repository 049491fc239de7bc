import * as path from 'node:path';
import { parseSizeMib } from './durations';
import { isMap } from './merge';
import type { ComposeVolume } from './types';

export type VolumeEntry = ComposeVolume | { type: 'tmpfs'; target: string; sizeMib?: number };

/** Named volumes are letters, digits and `_.-`, as docker allows them. */
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * One `volumes:` entry of a service: short (`data:/var/lib/x`, `./src:/src:ro`, `/cache`)
 * or long (`{type, source, target, read_only}`). Bind sources become absolute from the
 * project folder; whether they may be mounted is the caller's decision.
 */
export function parseVolumeEntry(value: unknown, projectDir: string): VolumeEntry | { error: string } {
  if (typeof value === 'string') return parseShort(value, projectDir);
  if (isMap(value)) return parseLong(value, projectDir);
  return { error: 'a volume is a string such as "data:/var/lib/data" or a mapping with type, source and target' };
}

function parseShort(text: string, projectDir: string): VolumeEntry | { error: string } {
  const parts = text.split(':');
  if (parts.length === 1) return checkTarget({ type: 'volume', target: text, readOnly: false });
  if (parts.length > 3) return { error: `${JSON.stringify(text)} is not SOURCE:TARGET[:MODE]` };
  const [source = '', target = '', mode = ''] = parts;
  const modes = mode.split(',').filter(Boolean);
  const unknown = modes.filter(
    (m) => !['ro', 'rw', 'z', 'Z', 'cached', 'delegated', 'consistent', 'nocopy'].includes(m),
  );
  if (unknown.length > 0) return { error: `${JSON.stringify(text)} has the unknown mode ${unknown.join(',')}` };
  const readOnly = modes.includes('ro');
  if (isPath(source)) return checkTarget({ type: 'bind', source: hostPath(source, projectDir), target, readOnly });
  if (!VOLUME_NAME.test(source)) return { error: `${JSON.stringify(source)} is neither a path nor a volume name` };
  return checkTarget({ type: 'volume', source, target, readOnly });
}

function parseLong(entry: Record<string, unknown>, projectDir: string): VolumeEntry | { error: string } {
  const type = entry.type ?? 'volume';
  const target = entry.target;
  if (typeof target !== 'string') return { error: 'the volume has no target' };
  const readOnly = entry.read_only === true;
  switch (type) {
    case 'volume': {
      if (entry.source === undefined || entry.source === '') return checkTarget({ type: 'volume', target, readOnly });
      if (typeof entry.source !== 'string' || !VOLUME_NAME.test(entry.source))
        return { error: `source ${JSON.stringify(entry.source)} is not a volume name` };
      return checkTarget({ type: 'volume', source: entry.source, target, readOnly });
    }
    case 'bind':
      if (typeof entry.source !== 'string' || !entry.source) return { error: 'a bind needs a source path' };
      return checkTarget({ type: 'bind', source: hostPath(entry.source, projectDir), target, readOnly });
    case 'tmpfs': {
      const tmpfs = isMap(entry.tmpfs) ? entry.tmpfs : {};
      const sizeMib = tmpfs.size === undefined ? undefined : parseSizeMib(tmpfs.size);
      return checkTarget({ type: 'tmpfs', target, ...(sizeMib ? { sizeMib } : {}) });
    }
    default:
      return { error: `the volume type ${JSON.stringify(type)} is not volume, bind or tmpfs` };
  }
}

function checkTarget<T extends VolumeEntry>(volume: T): T | { error: string } {
  if (!volume.target.startsWith('/'))
    return { error: `the target ${JSON.stringify(volume.target)} is not an absolute path in the service` };
  if (path.posix.normalize(volume.target) === '/') return { error: "the target is the service's root" };
  return volume;
}

function isPath(source: string): boolean {
  return source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
}

/** `~` is the host user's home: it stays as written (absolute), so the caller finds it outside the folder. */
function hostPath(source: string, projectDir: string): string {
  if (source === '~' || source.startsWith('~/')) return path.join(process.env.HOME ?? '/root', source.slice(1));
  return path.resolve(projectDir, source);
}
