import { noticeValue } from '../ui/notice-text';

/**
 * The "which devcontainer.json" choice, without VS Code: the picker's items, and the choice
 * remembered per folder (in the window's workspace state) while it still names a configuration
 * the folder has. Names come from the repository (a subfolder of .devcontainer/ may be called
 * anything): every shown value goes through noticeValue (one line, no control or bidi
 * characters, no `$(icon)`, link or markup, cut).
 */
export interface ConfigPickItem {
  /** The configuration, relative to the folder, as listConfigFiles names it; never shown raw. */
  file: string;
  label: string;
  description: string;
}

/** The picker's items, in the spec's order: a subfolder's configuration by the subfolder's name, the top ones by their place. */
export function configPickItems(files: readonly string[]): ConfigPickItem[] {
  return files.map((file) => {
    const nested = /^\.devcontainer\/([^/]+)\/devcontainer\.json$/.exec(file)?.[1];
    return { file, label: noticeValue(nested ?? file), description: noticeValue(file) };
  });
}

/** The workspace-state key of a folder's choice. */
export function configStateKey(folder: string): string {
  return `microvm.configFile:${folder}`;
}

/** The remembered choice, while the folder still has that configuration; else undefined. */
export function rememberedConfig(remembered: unknown, files: readonly string[]): string | undefined {
  return typeof remembered === 'string' && files.includes(remembered) ? remembered : undefined;
}

/** Whether opening must ask first: several configurations and none remembered. */
export function needsConfigChoice(files: readonly string[], remembered: string | undefined): boolean {
  return files.length > 1 && remembered === undefined;
}
