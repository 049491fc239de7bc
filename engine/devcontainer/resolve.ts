import * as fs from 'node:fs';
import * as path from 'node:path';
import { DevcontainerConfig, emptyConfig, readConfig } from './config';
import { ConfigFile, readConfigFile } from './locate';
import { parseConfigText } from './parse';
import { jsonPath, Problem, Problems } from './problems';
import { devcontainerId, RefusedVariable, substitute, VariableContext } from './variables';

/** What resolveConfig substitutes variables with. */
export interface ResolveOptions {
  /** The host folder being opened. */
  folder: string;
  /** Host environment variables the user lets into the VM through `${localEnv:...}`. */
  allowLocalEnv?: readonly string[];
  /** The host environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** A configuration already read (a pinned one); otherwise the folder's is read here. */
  file?: ConfigFile | null;
  /** The configuration the user chose (a path, absolute or relative to the folder; see chosenConfigFile), instead of the spec's first. */
  configFile?: string;
}

/** A devcontainer.json understood: what the file says, with its variables resolved, and what is wrong with it. */
export interface ResolvedConfig {
  folder: string;
  /** `.devcontainer/devcontainer.json`, when the folder has a configuration. */
  file?: ConfigFile;
  /** Absolute path of the configuration file (for `${devcontainerId}` and relative paths). */
  configPath?: string;
  /** As written. */
  raw?: Record<string, unknown>;
  /** With `${local...}`, `${containerWorkspace...}` and `${devcontainerId}` substituted. */
  substituted?: Record<string, unknown>;
  config: DevcontainerConfig;
  containerWorkspaceFolder: string;
  devcontainerId: string;
  problems: Problem[];
}

/**
 * Reads and resolves the folder's configuration: JSONC, then the spec's first two variable
 * passes (host-side names and `${devcontainerId}`), then each key on its own. Never throws
 * for a bad file: every problem is in `problems` (errors mean the folder cannot be opened as
 * described). `${containerEnv:...}` waits for the image's environment (resolveContainerEnv).
 */
export function resolveConfig(options: ResolveOptions): ResolvedConfig {
  const folder = fs.realpathSync(options.folder);
  const problems = new Problems();
  const file = options.file === undefined ? readConfigFile(folder, options.configFile) : (options.file ?? undefined);
  const configPath = file ? path.join(folder, file.file) : undefined;
  const id = devcontainerId(folder, configPath ?? path.join(folder, '.devcontainer', 'devcontainer.json'));
  if (file?.others)
    problems.add(
      'warning',
      'other-configurations',
      '$',
      `${file.file} is used: it comes first by name of the configurations in .devcontainer/, and ${file.others.join(', ')} ${file.others.length === 1 ? 'is' : 'are'} not`,
      'another one opens when it is .devcontainer/devcontainer.json',
    );
  const raw = file ? parseConfigText(file.text, problems) : undefined;
  const defaultFolder = `/workspaces/${guestBasename(folder)}`;
  if (!raw)
    return {
      folder,
      file,
      configPath,
      config: emptyConfig(),
      containerWorkspaceFolder: defaultFolder,
      devcontainerId: id,
      problems: problems.list,
    };

  const refused: RefusedVariable[] = [];
  const base: VariableContext = {
    localWorkspaceFolder: folder,
    containerWorkspaceFolder: defaultFolder,
    devcontainerId: id,
    localEnv: options.env ?? process.env,
    allowLocalEnv: new Set(options.allowLocalEnv ?? []),
  };
  const written =
    typeof raw.workspaceFolder === 'string'
      ? substitute(raw.workspaceFolder, base, refused, ['workspaceFolder'])
      : undefined;
  const containerWorkspaceFolder =
    written && written.startsWith('/') ? written.replace(/\/+$/, '') || '/' : defaultFolder;
  const substituted = substitute(raw, { ...base, containerWorkspaceFolder }, refused);
  reportRefused(refused, problems);
  const config = readConfig(substituted, problems);
  return {
    folder,
    file,
    configPath,
    raw,
    substituted,
    config,
    containerWorkspaceFolder,
    devcontainerId: id,
    problems: problems.list,
  };
}

/**
 * The spec's third pass: `${containerEnv:NAME}` from the VM's environment (image ENV and
 * containerEnv), over values whose other variables the first two passes already resolved.
 */
export function resolveContainerEnv<T>(value: T, containerEnv: Readonly<Record<string, string>>): T {
  return substitute(
    value,
    { localWorkspaceFolder: '', containerWorkspaceFolder: '', localEnv: {}, allowLocalEnv: new Set(), containerEnv },
    [],
    [],
    ['containerEnv'],
  );
}

function reportRefused(refused: RefusedVariable[], problems: Problems): void {
  for (const { name, path: at } of refused) {
    problems.add(
      'warning',
      'local-env-not-allowed',
      jsonPath(at),
      `\${localEnv:${name}} names a host environment variable this workspace may not read`,
      `it resolved to its default or to nothing; allow it with the microvm.localEnv.allow setting or --allow-local-env ${name}`,
    );
  }
}

/** The folder's name as one guest path component (no slashes or control characters). */
function guestBasename(folder: string): string {
  const name = path.basename(folder).replace(/[\u0000-\u001f\u007f/\\]/g, '_');
  return name === '' || name === '.' || name === '..' ? 'workspace' : name;
}
