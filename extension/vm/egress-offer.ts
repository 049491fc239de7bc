import {
  approveEgress,
  egressLogFile,
  EgressAnswer,
  learnedNames,
  openWorkspace,
  readEgressLog,
} from '../../engine/index';
import type { Ctx } from '../context';
import { notice } from '../ui/notice-text';
import { showInfo, showWarning } from '../ui/notify';

/**
 * After an open with network `learn`: the host names the workspace reached that are not yet
 * approved, offered once the hooks are done ("these 4 hosts were contacted: allow them from
 * now on?"). Names come from the guest's requests: they go to the log, never into the
 * notification's text, which only counts them.
 */
export async function offerLearnedHosts(ctx: Ctx, folder: string): Promise<void> {
  const pending = unapproved(folder);
  if (pending.length === 0) return;
  ctx.log.info(
    `network learn: the workspace reached ${pending.length} host name(s) not yet approved: ${pending.join(', ')}`,
  );
  const choice = await showInfo(
    notice`MicroVM: the workspace reached ${pending.length} host name(s) (listed in the MicroVM log). Approve them for network "allowlist" from now on?`,
    'Approve',
    'Show Log',
  );
  if (choice === 'Show Log') ctx.log.show();
  if (choice === 'Approve') await approve(ctx, folder);
}

/** "MicroVM: Approve Learned Hosts": the names the folder's learn runs reached become its allowlist. */
export async function approveLearnedHosts(ctx: Ctx): Promise<void> {
  const folder = ctx.folder()?.uri.fsPath;
  if (!folder) return;
  const learned = learnedNames(readEgressLog(egressLogFile(folder)));
  if (learned.length === 0) {
    void showInfo(
      notice`MicroVM: no host names were learned for this folder yet. Set microvm.network to "learn", open the folder in a MicroVM and use it, then run this again.`,
    );
    return;
  }
  await approve(ctx, folder);
}

async function approve(ctx: Ctx, folder: string): Promise<void> {
  const names = learnedNames(readEgressLog(egressLogFile(folder))).map((l) => l.name);
  const record = await approveEgress(folder, names);
  ctx.log.info(`approved for network allowlist: ${record.egress?.allow.join(', ')}`);
  void showInfo(
    notice`MicroVM: ${names.length} host name(s) approved for this folder. With microvm.network set to "allowlist", its VMs reach them and nothing new.`,
  );
}

function unapproved(folder: string): string[] {
  const approved = new Set(openWorkspace(folder).egress?.allow ?? []);
  return learnedNames(readEgressLog(egressLogFile(folder)))
    .map((l) => l.name)
    .filter((n) => !approved.has(n));
}

/**
 * network allowlist with microvm.askForHosts: the guest asked for a name outside the list. The
 * name is a canonical host name (letters, digits, dots, dashes) and goes through `notice`,
 * which escapes it; no answer within a minute (the engine's limit) is a Deny.
 */
export async function askEgress(name: string, port: number): Promise<EgressAnswer> {
  const choice = await showWarning(
    notice`MicroVM: the workspace wants to reach ${name} (port ${port}), which is not in its allowlist.`,
    'Allow Once',
    'Always',
    'Deny',
  );
  return choice === 'Allow Once' ? 'once' : choice === 'Always' ? 'always' : 'deny';
}
