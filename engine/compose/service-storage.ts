import * as path from 'node:path';
import { quote } from '../devcontainer/problems';
import { parseSizeMib } from './durations';
import { isInside, realPathOf } from './files';
import type { ComposeService } from './types';
import { parseVolumeEntry } from './volumes';
import type { ServiceContext, ServicePath } from './service-context';

export function readVolumes(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: ServicePath,
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

export function readTmpfs(value: unknown, service: ComposeService, ctx: ServiceContext, at: ServicePath): void {
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
