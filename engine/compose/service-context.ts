import type { ComposeProblems } from './problems';

export interface ServiceContext {
  /** The workspace folder (real path): binds, build contexts and env files must be inside it. */
  folder: string;
  /** Where relative paths start: the first compose file's folder, as in docker compose. */
  projectDir: string;
  /** The compose file that defines the service, as problems name it. */
  file: string;
  /** Host variables the user allowed into VMs: what a bare `KEY` in environment takes. */
  hostEnv: (name: string) => string | undefined;
  problems: ComposeProblems;
}

/** The YAML path of a key of the service being read, for problems (`$.services.app.ports[0]`). */
export type ServicePath = (...keys: Array<string | number>) => string;
