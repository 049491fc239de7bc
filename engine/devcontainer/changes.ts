/**
 * What changed in a devcontainer.json between two opens, and which changes must not take
 * effect without the user's leave: the ones that decide what the VM may take from the host
 * (memory, CPUs, disks), what it shares (mounts), which host ports it binds and how it
 * reaches the network. The rest (image, commands, environment) stays inside the VM.
 */
export type ChangeCategory = 'resources' | 'mounts' | 'ports' | 'network';

/** One consequential difference between the accepted devcontainer.json and the current one. */
export interface ConfigChange {
  /** `$.hostRequirements.memory` */
  path: string;
  category: ChangeCategory;
  before: unknown;
  after: unknown;
}

const CONSEQUENTIAL: Record<string, ChangeCategory> = {
  hostRequirements: 'resources',
  runArgs: 'resources',
  mounts: 'mounts',
  workspaceMount: 'mounts',
  forwardPorts: 'ports',
  appPort: 'ports',
  portsAttributes: 'ports',
  otherPortsAttributes: 'ports',
  customizations: 'network',
};

/** The consequential differences between the configuration accepted last and the one read now. */
export function consequentialChanges(before: Record<string, unknown>, after: Record<string, unknown>): ConfigChange[] {
  const changes: ConfigChange[] = [];
  for (const [key, category] of Object.entries(CONSEQUENTIAL)) {
    if (key === 'customizations') {
      const was = microvmNetwork(before.customizations);
      const now = microvmNetwork(after.customizations);
      if (!same(was, now))
        changes.push({ path: '$.customizations.microvm.network', category, before: was, after: now });
      continue;
    }
    diff(`$.${key}`, before[key], after[key], category, changes);
  }
  return changes;
}

function microvmNetwork(customizations: unknown): unknown {
  const microvm = (customizations as { microvm?: unknown } | undefined)?.microvm;
  return (microvm as { network?: unknown } | undefined)?.network;
}

/** Down into objects, so that a change names the leaf (`$.hostRequirements.memory`); arrays compare whole. */
function diff(at: string, before: unknown, after: unknown, category: ChangeCategory, out: ConfigChange[]): void {
  if (isObject(before) && isObject(after)) {
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)]))
      diff(`${at}.${key}`, before[key], after[key], category, out);
    return;
  }
  if (!same(before, after)) out.push({ path: at, category, before, after });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** One line per change, plain text (values JSON-quoted and cut): for a dialog or the CLI. */
export function describeChange(change: ConfigChange): string {
  const show = (v: unknown) => (v === undefined ? '(none)' : cut(JSON.stringify(v)));
  return `${change.path}: ${show(change.before)} -> ${show(change.after)}`;
}

function cut(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
