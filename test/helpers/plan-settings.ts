import { DEFAULT_PROTECT, PlanSettings } from '../../engine';

/**
 * The machine settings a test's workspace opens with: a small offline VM on the embedded
 * image, the default protected names, git writable. Tests name only what they change.
 */
export function testPlanSettings(overrides: Partial<PlanSettings> = {}): PlanSettings {
  return {
    image: '',
    memoryMib: 256,
    cpus: 1,
    network: 'none',
    symlinks: 'opaque',
    protect: [...DEFAULT_PROTECT],
    git: 'writable',
    ...overrides,
  };
}
