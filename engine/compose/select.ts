import type { ComposeProblems } from './problems';
import type { ComposeProject, ComposeService } from './types';

/**
 * Which services a workspace starts, in start order (each after what it depends on), as
 * `docker compose up` picks them for the reference CLI: the primary service and
 * `runServices` (all services when it is absent), minus services whose profiles are all
 * inactive unless named explicitly, plus every service they depend on.
 */
export function servicesToStart(
  project: ComposeProject,
  primary: string,
  runServices: readonly string[] | undefined,
  activeProfiles: readonly string[],
  file: string,
  problems: ComposeProblems,
): string[] {
  const enabled = ([, service]: [string, ComposeService]) =>
    service.profiles.length === 0 ||
    service.profiles.some((p) => activeProfiles.includes(p)) ||
    activeProfiles.includes('*');
  const wanted = new Set<string>();
  const targets = runServices
    ? [...runServices, primary]
    : [
        ...Object.entries(project.services)
          .filter(enabled)
          .map(([name]) => name),
        primary,
      ];
  for (const name of targets) {
    if (project.services[name]) wanted.add(name);
    else if (name !== primary)
      problems.add(
        file,
        'warning',
        'compose-run-service',
        'runServices',
        `runServices names ${JSON.stringify(name)}, which no compose file defines`,
        'not started',
      );
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      problems.add(
        file,
        'error',
        'compose-dependency-cycle',
        `services.${name}.depends_on`,
        `the services depend on each other in a cycle: ${[...chain, name].join(' -> ')}`,
        'the project cannot start; remove one of the dependencies',
      );
      return;
    }
    const service = project.services[name];
    if (!service) return;
    state.set(name, 'visiting');
    // network_mode: service:X needs X running first, as docker compose orders it.
    const network =
      service.network?.mode === 'service'
        ? { [service.network.service]: { condition: 'service_started' as const, required: true } }
        : {};
    for (const [dep, spec] of Object.entries({ ...network, ...service.dependsOn })) {
      if (project.services[dep]) visit(dep, [...chain, name]);
      else if (spec.required)
        problems.add(
          file,
          'error',
          'compose-dependency',
          `services.${name}.depends_on`,
          `${name} depends on ${JSON.stringify(dep)}, which no compose file defines`,
          `${name} cannot start; define the service or mark the dependency required: false`,
        );
    }
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of wanted) visit(name, []);
  return order;
}
