import { mergeConfiguration } from '../devcontainer/merge';
import { resolveConfig } from '../devcontainer/resolve';
import { composeOf } from '../workspace/prepare';
import { parseWorkspaceFlags } from './workspace-args';

/**
 * `microvm read-configuration --workspace-folder DIR`: the folder's devcontainer.json as this
 * tool understands it, on stdout as one JSON object: `configuration` (variables substituted),
 * `mergedConfiguration` (with --include-merged-configuration: the spec's merge, hooks as
 * lists), `workspace` (where the folder goes in the VM), `compose` (the project and the
 * services that start, dependencies first) and every problem, the compose files' included. Exit status 1 when a
 * problem keeps the folder from opening as described.
 */
export async function readConfigurationCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'read-configuration');
  const resolved = resolveConfig({
    folder: flags.folder,
    allowLocalEnv: flags.allowLocalEnv,
    ...(flags.configFile === undefined ? {} : { configFile: flags.configFile }),
  });
  const configuration = resolved.substituted ?? {};
  const compose = composeOf(resolved, { allowLocalEnv: flags.allowLocalEnv });
  const problems = [...resolved.problems, ...(compose?.problems ?? [])];
  const output = {
    configuration: { ...configuration, configFilePath: resolved.configPath ?? null },
    ...(flags.includeMerged ? { mergedConfiguration: mergeConfiguration(configuration) } : {}),
    workspace: { workspaceFolder: resolved.containerWorkspaceFolder, devcontainerId: resolved.devcontainerId },
    ...(compose?.project
      ? { compose: { project: compose.project.name, files: compose.project.files, start: compose.start } }
      : {}),
    problems,
  };
  process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  return problems.some((p) => p.severity === 'error') ? 1 : 0;
}
