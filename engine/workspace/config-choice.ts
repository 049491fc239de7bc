import { chosenConfigFile, listConfigFiles } from '../devcontainer/locate';
import { MicrovmError, shown } from '../errors';

/**
 * The configuration a workspace opens with, relative to the folder: the one chosen (a path,
 * validated by chosenConfigFile), else the spec's first; undefined for a folder without one.
 */
export function wantedConfigFile(folder: string, configFile?: string): string | undefined {
  return configFile === undefined ? listConfigFiles(folder)[0] : chosenConfigFile(folder, configFile);
}

/**
 * E_WORKSPACE_CONFIG when the folder's VM runs (or starts) from another configuration than the
 * one asked for: one workspace per folder, so its VM and container are never silently reused
 * for another configuration. Undefined when they are the same.
 */
export function configMismatch(
  folder: string,
  running: string | undefined,
  wanted: string | undefined,
): MicrovmError | undefined {
  if (running === wanted) return undefined;
  const name = (file: string | undefined) => (file === undefined ? 'no devcontainer.json' : shown(file));
  return new MicrovmError(
    'E_WORKSPACE_CONFIG',
    `the workspace VM of ${folder} runs ${name(running)}, not ${name(wanted)}, and a folder has one VM at a time; ` +
      `stop it first (\`microvm down --workspace-folder ${JSON.stringify(folder)}\` or "MicroVM: Stop MicroVM"), then open the folder with the other configuration`,
  );
}
