import * as vscode from 'vscode';
import {
  approveEgress,
  egressLogFile,
  EgressAnswer,
  LearnedName,
  learnedNames,
  openWorkspace,
  readEgressLog,
} from '../../engine/index';
import type { Ctx } from '../context';
import { notice } from '../ui/notice-text';
import { showInfo, showWarning } from '../ui/notify';
import { GUEST_REPORT_NOTE, LearnedHostItem, learnedHostItems, learnedHostLine } from './learned-hosts';

/**
 * After an open with network `learn`: the host names the workspace reached that are not yet
 * approved, offered once the hooks are done ("these 4 hosts were contacted: review them?").
 * The notification only counts them; Review lists each host with the guest processes that
 * reached it (the guest's word, escaped: learned-hosts.ts), to approve the ones ticked.
 */
export async function offerLearnedHosts(ctx: Ctx, folder: string): Promise<void> {
  const pending = unapproved(folder);
  if (pending.length === 0) return;
  const items = learnedHostItems(pending);
  ctx.log.info(`network learn: the workspace reached ${pending.length} host name(s) not yet approved:`);
  for (const item of items) ctx.log.info(`  ${learnedHostLine(item)}`);
  const choice = await showInfo(
    notice`MicroVM: the workspace reached ${pending.length} host name(s) not yet approved. Review them, with the guest processes that reached each, and approve them for network "allowlist"?`,
    'Review',
    'Show Log',
  );
  if (choice === 'Show Log') ctx.log.show();
  if (choice === 'Review') await review(ctx, folder, items);
}

/** "MicroVM: Approve Learned Hosts": the names the folder's learn runs reached, to approve for its allowlist. */
export async function approveLearnedHosts(ctx: Ctx): Promise<void> {
  const folder = ctx.folder()?.uri.fsPath;
  if (!folder) return;
  if (learnedNames(readEgressLog(egressLogFile(folder))).length === 0) {
    void showInfo(
      notice`MicroVM: no host names were learned for this folder yet. Set microvm.network to "learn", open the folder in a MicroVM and use it, then run this again.`,
    );
    return;
  }
  const pending = unapproved(folder);
  if (pending.length === 0) {
    void showInfo(notice`MicroVM: every host name learned for this folder is approved already.`);
    return;
  }
  await review(ctx, folder, learnedHostItems(pending));
}

/** The hosts as a list to tick (all ticked at first); the ticked ones join the folder's approved names. */
async function review(ctx: Ctx, folder: string, items: LearnedHostItem[]): Promise<void> {
  const picked = await vscode.window.showQuickPick(
    items.map((item) => ({ ...item, picked: true })),
    {
      canPickMany: true,
      matchOnDescription: true,
      matchOnDetail: true,
      title: `MicroVM: hosts the workspace reached with network "learn" (${GUEST_REPORT_NOTE})`,
      placeHolder: 'Untick the hosts not to approve, then press Enter',
      ignoreFocusOut: true,
    },
  );
  if (!picked || picked.length === 0) return;
  const names = picked.map((item) => item.name);
  const record = await approveEgress(folder, [...(openWorkspace(folder).egress?.allow ?? []), ...names]);
  ctx.log.info(`approved for network allowlist: ${record.egress?.allow.join(', ')}`);
  void showInfo(
    notice`MicroVM: ${names.length} host name(s) approved for this folder. With microvm.network set to "allowlist", its VMs reach the approved names and nothing new.`,
  );
}

function unapproved(folder: string): LearnedName[] {
  const approved = new Set(openWorkspace(folder).egress?.allow ?? []);
  return learnedNames(readEgressLog(egressLogFile(folder))).filter((l) => !approved.has(l.name));
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
