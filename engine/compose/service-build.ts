import * as fs from 'node:fs';
import * as path from 'node:path';
import { quote } from '../devcontainer/problems';
import { isInside, realPathOf } from './files';
import { asMap, isMap } from './merge';
import type { ComposeBuild } from './types';
import type { ServiceContext } from './service-context';

export function readBuild(value: unknown, ctx: ServiceContext, at: string): ComposeBuild | undefined {
  const raw = typeof value === 'string' ? { context: value } : value;
  if (!isMap(raw)) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build',
      at,
      `build is ${quote(value)}, not a path or a mapping`,
      'the service cannot be built',
    );
    return undefined;
  }
  const contextText = raw.context === undefined ? '.' : raw.context;
  if (
    typeof contextText !== 'string' ||
    /^[a-z][a-z0-9+.-]*:\/\//i.test(contextText) ||
    contextText.startsWith('git@')
  ) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-context',
      `${at}.context`,
      `the build context ${quote(contextText)} is not a folder path`,
      'the service cannot be built; build contexts must be folders inside the workspace',
    );
    return undefined;
  }
  // Links resolved: a context that is a link out of the folder would hand the builder VM its target.
  const context = realPathOf(path.resolve(ctx.projectDir, contextText));
  if (!isInside(ctx.folder, context)) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-context',
      `${at}.context`,
      `the build context ${quote(contextText)} is outside the workspace folder (${context})`,
      'the service cannot be built; the builder VM sees only the workspace folder',
    );
    return undefined;
  }
  if (!fs.statSync(context, { throwIfNoEntry: false })?.isDirectory()) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-context',
      `${at}.context`,
      `the build context ${quote(contextText)} does not exist (${context})`,
      'the service cannot be built; fix the path',
    );
    return undefined;
  }
  const dockerfileText = typeof raw.dockerfile === 'string' && raw.dockerfile ? raw.dockerfile : 'Dockerfile';
  const dockerfile = realPathOf(path.resolve(context, dockerfileText));
  if (!isInside(ctx.folder, dockerfile) || !fs.statSync(dockerfile, { throwIfNoEntry: false })?.isFile()) {
    ctx.problems.add(
      ctx.file,
      'error',
      'compose-build-dockerfile',
      `${at}.dockerfile`,
      `the Dockerfile ${quote(dockerfileText)} ${isInside(ctx.folder, dockerfile) ? 'does not exist' : 'is outside the workspace folder'} (${dockerfile})`,
      'the service cannot be built; fix build.dockerfile (relative to the build context)',
    );
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!['context', 'dockerfile', 'args', 'target'].includes(key) && !key.startsWith('x-')) {
      ctx.problems.add(
        ctx.file,
        'warning',
        'compose-build-option',
        `${at}.${key}`,
        `build.${key} is ${quote(raw[key])}`,
        'not applied to the build',
      );
    }
  }
  const args: Record<string, string> = {};
  for (const [k, v] of Object.entries(asMap(raw.args))) {
    if (v === null || v === undefined) continue;
    args[k] = String(v);
  }
  return {
    context,
    dockerfile: path.relative(context, dockerfile),
    args,
    ...(typeof raw.target === 'string' && raw.target ? { target: raw.target } : {}),
  };
}
