export { loadCompose } from './load';
export type { LoadComposeOptions, LoadedCompose } from './load';
export type {
  ComposeBuild,
  ComposePort,
  ComposeProject,
  ComposeService,
  ComposeVolume,
  DependsOnCondition,
  HealthCheck,
} from './types';
