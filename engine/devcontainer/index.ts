/** devcontainer.json, read on the host and understood without VS Code. */
export { readConfigFile, CONFIG_CANDIDATES } from './locate';
export type { ConfigFile } from './locate';
export { consequentialChanges, describeChange } from './changes';
export type { ConfigChange, ChangeCategory } from './changes';
