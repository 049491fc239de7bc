import { ConfigChange, consequentialChanges } from '../devcontainer/changes';
import { ConfigFile } from '../devcontainer/locate';
import { WorkspaceRecord } from './record';

/**
 * What to do with the configuration read at this open, given the one the user accepted
 * last (pure): use it as it is (first open, unchanged, or changed only in ways that stay
 * inside the VM), or ask first because it now takes more from the host.
 */
export type PinDecision =
  { kind: 'use'; reason: 'first' | 'unchanged' | 'harmless' } | { kind: 'ask'; changes: ConfigChange[] };

/** Whether a workspace opens with its devcontainer.json as it is now, or the user must be asked about consequential changes first. */
export function pinDecision(record: WorkspaceRecord, file: ConfigFile, parsed: Record<string, unknown>): PinDecision {
  const previous = record.config;
  if (!previous) return { kind: 'use', reason: 'first' };
  if (previous.digest === file.digest) return { kind: 'use', reason: 'unchanged' };
  const changes = consequentialChanges(previous.accepted, parsed);
  return changes.length === 0 ? { kind: 'use', reason: 'harmless' } : { kind: 'ask', changes };
}

/** The record with this configuration accepted (to be saved). */
export function pinned(record: WorkspaceRecord, file: ConfigFile, parsed: Record<string, unknown>): WorkspaceRecord {
  return { ...record, config: { file: file.file, digest: file.digest, accepted: parsed } };
}
