import * as path from 'node:path';
import { quote } from '../devcontainer/problems';
import { readEnvFile, readFolderFile, shownPath } from './files';
import { resolveExtends } from './extends';
import { readIncludes } from './include';
import { isMap, mergeComposeFiles } from './merge';
import { ComposeProblems, yamlPath } from './problems';
import { readService } from './service';
import { servicesToStart } from './select';
import type { ComposeProject } from './types';
import { UNHONOURED_TOP } from './unsupported';
import { readComposeYaml } from './yaml-file';

export interface LoadComposeOptions {
  /** The workspace folder on the host. */
  folder: string;
  /** The folder of the devcontainer.json: `dockerComposeFile` paths start there. */
  configDir: string;
  /** `dockerComposeFile`, as written. */
  files: readonly string[];
  /** `service`: the workspace's own service. */
  service: string;
  runServices?: readonly string[];
  /** The host environment, and which of its names may reach the VMs (the same rule as `${localEnv:...}`). */
  env: NodeJS.ProcessEnv;
  allowLocalEnv: readonly string[];
}

/** A devcontainer's compose files, loaded: the project, the services to start, and the problems found. */
export interface LoadedCompose {
  project?: ComposeProject;
  /** Services to start, dependencies first; includes the primary service. */
  start: string[];
  problems: ComposeProblems['list'];
}

/**
 * Reads a devcontainer's compose project on the host, before any VM: the files (inside the
 * folder only), the project `.env` next to the first one, interpolation, merging, each
 * service normalised, and which services start. Every problem is reported at once.
 *
 * The host environment enters only through names the user allowed (as for `${localEnv:...}`):
 * compose files would otherwise carry any host variable, a token included, into a VM.
 */
export function loadCompose(options: LoadComposeOptions): LoadedCompose {
  const problems = new ComposeProblems();
  const folder = path.resolve(options.folder);
  const files = options.files.map((f) => path.resolve(options.configDir, f));
  const projectDir = path.dirname(files[0] ?? path.join(options.configDir, 'x'));
  const allowed = new Set(options.allowLocalEnv);
  const hostEnv = (name: string) => (allowed.has(name) ? options.env[name] : undefined);
  const dotenv = readEnvFile(folder, path.join(projectDir, '.env'), problems);
  const refused = new Set<string>();
  const lookup = (name: string) => {
    const host = hostEnv(name);
    if (host !== undefined) return host;
    if (name in dotenv) return dotenv[name];
    if (options.env[name] !== undefined) refused.add(name);
    return undefined;
  };
  const data: Array<Record<string, unknown>> = [];
  const definedIn = new Map<string, string>();
  // Where an included file's services start their relative paths (their own project folder).
  const serviceDirs = new Map<string, string>();
  // The file (absolute) that defines each service last: extends without `file` looks there.
  const definedAt = new Map<string, string>();
  const included = new Map<string, string>();
  for (const file of files) {
    const shown = shownPath(folder, file);
    const read = readFolderFile(folder, file);
    if ('error' in read) {
      problems.add(
        shown,
        'error',
        'compose-file',
        '$',
        `the compose file cannot be read: ${read.detail}`,
        'the compose project cannot start; fix dockerComposeFile',
      );
      continue;
    }
    const parsed = readComposeYaml(read.text, shown, lookup, problems);
    if (!parsed) continue;
    for (const include of readIncludes(parsed, file, { folder, problems, hostEnv, env: options.env, refused })) {
      data.push(include.data);
      for (const name of serviceNames(include.data)) {
        reportConflict(name, include.file, definedIn.get(name), problems);
        definedIn.set(name, include.file);
        definedAt.set(name, include.path);
        included.set(name, include.file);
        serviceDirs.set(name, include.dir);
      }
    }
    data.push(parsed);
    for (const name of serviceNames(parsed)) {
      if (included.has(name)) reportConflict(name, included.get(name) as string, shown, problems);
      definedIn.set(name, shown);
      definedAt.set(name, file);
      serviceDirs.delete(name);
    }
  }
  for (const name of refused) {
    problems.add(
      shownPath(folder, files[0] ?? ''),
      'warning',
      'compose-env-not-passed',
      '$',
      `the compose files use the host variable ${name}, which is not passed into VMs unless allowed`,
      `it is treated as unset; allow it with the microvm.localEnv.allow setting or --allow-local-env ${name}, or set it in ${shownPath(folder, path.join(projectDir, '.env'))}`,
    );
  }
  if (problems.hasErrors || data.length === 0) return { start: [], problems: problems.list };
  const merged = mergeComposeFiles(data);
  const mainFile = shownPath(folder, files[0] ?? '');
  for (const key of Object.keys(merged)) {
    if (['services', 'volumes', 'name', 'include'].includes(key) || key.startsWith('x-')) continue;
    const known = UNHONOURED_TOP[key];
    problems.add(
      mainFile,
      known?.severity ?? 'warning',
      known ? 'compose-unsupported' : 'compose-unknown-key',
      key,
      `${key} is set to ${quote(merged[key])}`,
      known?.consequence ?? 'not a compose key; ignored',
    );
  }
  if (!isMap(merged.services) || Object.keys(merged.services).length === 0) {
    problems.add(
      mainFile,
      'error',
      'compose-no-services',
      'services',
      'the compose files define no services',
      'there is nothing to start',
    );
    return { start: [], problems: problems.list };
  }
  resolveExtends(merged.services, (name) => definedAt.get(name) ?? files[0] ?? '', { folder, problems, lookup });
  const project: ComposeProject = {
    name:
      typeof merged.name === 'string' && merged.name
        ? merged.name
        : (dotenv.COMPOSE_PROJECT_NAME ?? `${path.basename(folder)}_devcontainer`),
    files,
    services: {},
    volumes: isMap(merged.volumes) ? Object.keys(merged.volumes) : [],
  };
  for (const [name, raw] of Object.entries(merged.services)) {
    const service = readService(name, raw, {
      folder,
      projectDir: serviceDirs.get(name) ?? projectDir,
      file: definedIn.get(name) ?? mainFile,
      hostEnv,
      problems,
    });
    if (service) project.services[name] = service;
  }
  if (!project.services[options.service]) {
    // No service at all is devcontainer.json's own error (missing-service), said there.
    if (options.service !== '')
      problems.add(
        mainFile,
        'error',
        'compose-no-service',
        'services',
        `the devcontainer.json service ${JSON.stringify(options.service)} is not defined (the files define ${Object.keys(project.services).join(', ')})`,
        'the workspace cannot start; set service to one of them',
      );
    return { project, start: [], problems: problems.list };
  }
  const profiles = (hostEnv('COMPOSE_PROFILES') ?? dotenv.COMPOSE_PROFILES ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const start = servicesToStart(project, options.service, options.runServices, profiles, mainFile, problems);
  for (const name of start) {
    const ports = project.services[name]?.ports ?? [];
    if (name === options.service || ports.length === 0) continue;
    const forwards = ports.map((p) => `"${name}:${p.target}"`).join(', ');
    problems.add(
      definedIn.get(name) ?? mainFile,
      'warning',
      'compose-service-ports',
      yamlPath(['services', name, 'ports']),
      `ports ${ports.map((p) => (p.published ? `${p.published}:${p.target}` : String(p.target))).join(', ')} of service ${JSON.stringify(name)} would be published on the host by docker compose`,
      `not published: only the workspace's own service publishes its ports; the other VMs reach ${name} by name, and the host reaches it through forwardPorts: add ${forwards} to forwardPorts in devcontainer.json`,
    );
  }
  return { project, start, problems: problems.list };
}

function serviceNames(data: Record<string, unknown>): string[] {
  return isMap(data.services) ? Object.keys(data.services) : [];
}

/** A service defined by an included file and again elsewhere: docker compose refuses the project. */
function reportConflict(
  name: string,
  includedFrom: string,
  other: string | undefined,
  problems: ComposeProblems,
): void {
  if (other === undefined) return;
  problems.add(
    other,
    'error',
    'compose-include-conflict',
    yamlPath(['services', name]),
    `service ${JSON.stringify(name)} is defined here and in ${includedFrom}, which include brings in`,
    'the compose project cannot start, as in docker compose; rename one of them, or list both files in dockerComposeFile to merge them',
  );
}
