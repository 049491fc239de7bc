import { describeEgress } from '../egress/log';
import { checkPatterns } from '../egress/policy';
import {
  describeLearnedProcesses,
  egressLogFile,
  LearnedName,
  learnedNames,
  readEgressLog,
} from '../workspace/egress-log';
import { approveEgress, openWorkspace } from '../workspace/record';
import { MicrovmError } from '../errors';
import { parseWorkspaceFlags } from './workspace-args';

/**
 * `microvm net-policy --workspace-folder DIR [--write] [--json]`: the host names the
 * workspace reached with network `learn` (from its egress log), and the names approved for
 * `allowlist`; `--write` approves the learned names, so the next open with network allowlist
 * reaches those and nothing new.
 */
export async function netPolicyCommand(args: string[]): Promise<number> {
  const write = args.includes('--write');
  const json = args.includes('--json');
  const flags = parseWorkspaceFlags(
    args.filter((a) => a !== '--write' && a !== '--json'),
    'net-policy',
    {},
  );
  const learned = learnedNames(readEgressLog(egressLogFile(flags.folder)));
  let record = openWorkspace(flags.folder);
  if (write) {
    if (learned.length === 0) {
      throw new MicrovmError(
        'E_BAD_OPTION',
        `no host names were learned for ${flags.folder}: open it with network learn first (microvm.network "learn", or --network learn), then run this again`,
      );
    }
    record = await approveEgress(
      flags.folder,
      checkPatterns(
        learned.map((l) => l.name),
        'the learned names',
      ),
    );
  }
  const approved = record.egress?.allow ?? [];
  if (json) {
    process.stdout.write(`${JSON.stringify({ learned, approved }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    learned.length > 0
      ? `learned (network learn), most used first:\n${learned.map(describeLearned).join('\n')}\n`
      : 'nothing learned yet: open the folder with network learn to record the hosts it reaches\n',
  );
  process.stdout.write(
    approved.length > 0
      ? `approved for network allowlist${write ? ' (just written)' : ''}: ${approved.join(', ')}\n`
      : 'no host approved for this folder: `microvm net-policy --workspace-folder DIR --write` approves the learned ones\n',
  );
  return 0;
}

/** `  registry.npmjs.org  12 connection(s), last 2026-...Z, by npm (11 connections), node (1 connection) (as the guest reports)`. */
function describeLearned(learned: LearnedName): string {
  const processes = describeLearnedProcesses(learned);
  const by = processes ? `, by ${processes} (as the guest reports)` : '';
  return `  ${learned.name}  ${learned.count} connection(s), last ${learned.last}${by}`;
}

/** `microvm net-log --workspace-folder DIR [--json]`: every connection the workspace's VMs asked the egress proxy for. */
export async function netLogCommand(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const flags = parseWorkspaceFlags(
    args.filter((a) => a !== '--json'),
    'net-log',
    {},
  );
  const lines = readEgressLog(egressLogFile(flags.folder));
  for (const line of lines)
    process.stdout.write(json ? `${JSON.stringify(line)}\n` : `${line.at} ${line.mode} ${describeEgress(line)}\n`);
  return 0;
}
