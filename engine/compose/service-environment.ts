import * as path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { quote } from '../devcontainer/problems';
import { readFolderFile } from './files';
import { asMap, isMap } from './merge';
import type { ComposeService } from './types';
import type { ServiceContext, ServicePath } from './service-context';

/** env_file first (in order), then environment on top, as docker compose layers them. */
export function readEnvironment(
  raw: Record<string, unknown>,
  service: ComposeService,
  ctx: ServiceContext,
  at: ServicePath,
): void {
  const files = raw.env_file === undefined ? [] : Array.isArray(raw.env_file) ? raw.env_file : [raw.env_file];
  files.forEach((entry, i) => {
    const where = Array.isArray(raw.env_file) ? at('env_file', i) : at('env_file');
    const spec =
      typeof entry === 'string'
        ? { path: entry, required: true }
        : isMap(entry) && typeof entry.path === 'string'
          ? { path: entry.path, required: entry.required !== false }
          : undefined;
    if (!spec) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-env-file',
        where,
        `env_file entry ${quote(entry)} is not a path`,
        'not read',
      );
      return;
    }
    const file = path.resolve(ctx.projectDir, spec.path);
    const read = readFolderFile(ctx.folder, file);
    if ('error' in read) {
      if (read.error === 'missing' && !spec.required) return;
      const consequence =
        read.error === 'outside'
          ? 'not read: host files outside the folder do not reach the VMs; copy the values the service needs into a file in the folder'
          : `the service starts without its variables${read.error === 'missing' ? '; create the file or mark it required: false' : ''}`;
      ctx.problems.add(
        ctx.file,
        read.error === 'missing' ? 'error' : 'warning',
        'compose-env-file',
        where,
        `env_file ${quote(spec.path)}: ${read.detail}`,
        consequence,
      );
      return;
    }
    Object.assign(service.environment, parseDotenv(read.text));
  });
  for (const [key, value] of Object.entries(asMap(raw.environment))) {
    if (value === null || value === undefined) {
      const host = ctx.hostEnv(key);
      if (host !== undefined) service.environment[key] = host;
      else
        ctx.problems.add(
          ctx.file,
          'warning',
          'compose-env-not-passed',
          at('environment', key),
          `${key} takes its value from the host environment, which is not passed into VMs unless allowed`,
          `${key} is unset in the service; allow it with the microvm.localEnv.allow setting or --allow-local-env ${key}, or give it a value`,
        );
    } else if (isMap(value) || Array.isArray(value)) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-environment',
        at('environment', key),
        `${key} is ${quote(value)}, not a string`,
        `${key} is unset in the service`,
      );
    } else {
      service.environment[key] = String(value);
    }
  }
}
