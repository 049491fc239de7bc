import { ConfigFile, readConfigFile } from '../../engine/index';
import { parseDevcontainer, ParsedDevcontainer } from './devcontainer';

export type LoadedDevcontainer = ParsedDevcontainer & ConfigFile;

/**
 * Reads the folder's devcontainer.json on the host, before any guest runs (never through a
 * link that leaves the folder), and parses it. Parse errors propagate (DevcontainerError).
 */
export function loadDevcontainer(folder: string): LoadedDevcontainer | undefined {
  const file = readConfigFile(folder);
  return file && { ...file, ...parseDevcontainer(file.file, file.text) };
}
