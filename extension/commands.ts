import * as vscode from 'vscode';
import type { CommandTable, Ctx } from './context';
import { openFolder, stopVm } from './vm/open-folder';
import { approveLearnedHosts } from './vm/egress-offer';
import { chooseConfig } from './vm/choose-config';
import { resetContainer } from '../engine/index';
import { openShellTerminal } from './terminal/terminals';
import { PortRow } from './ports/rules';
import { failureNotice } from './ui/failure-notice';
import { notice } from './ui/notice-text';
import { showError, showInfo, showWarning } from './ui/notify';

const notRunning = () => () => showInfo(notice`No MicroVM is running. Run "MicroVM: Open Folder in MicroVM" first.`);

export const COMMANDS: CommandTable = {
  'microvm.openFolder': { running: (ctx) => () => openFolder(ctx) },
  'microvm.newTerminal': {
    running: (ctx) => () => openShellTerminal(ctx),
    stopped: (ctx) => () => openFolder(ctx),
  },
  'microvm.stop': { running: (ctx) => () => stopVm(ctx), stopped: notRunning },
  'microvm.rebuild': {
    running: (ctx) => async () => {
      await stopVm(ctx);
      await rebuild(ctx);
    },
    stopped: (ctx) => () => rebuild(ctx),
  },
  'microvm.refreshTypes': { running: (ctx) => () => refreshTypes(ctx), stopped: notRunning },
  'microvm.forwardPort': { running: (ctx) => (row?: PortRow) => forwardPort(ctx, row), stopped: notRunning },
  'microvm.showLog': { running: (ctx) => () => ctx.log.show() },
  'microvm.chooseConfig': {
    running: (ctx) => () =>
      chooseConfig(
        ctx,
        () => openFolder(ctx),
        () => stopVm(ctx),
      ),
  },
  'microvm.approveLearnedHosts': { running: (ctx) => () => approveLearnedHosts(ctx) },
  'microvm.ports.openBrowser': {
    running: () => (row: PortRow) =>
      row.localAddress && vscode.env.openExternal(vscode.Uri.parse(`http://${row.localAddress}/`)),
  },
  'microvm.ports.copyAddress': {
    running: () => (row: PortRow) => row.localAddress && vscode.env.clipboard.writeText(row.localAddress),
  },
  'microvm.ports.stopForwarding': {
    running: (ctx) => (row: PortRow) => ctx.session?.unforward(row.guestPort, true),
    stopped: notRunning,
  },
};

async function forwardPort(ctx: Ctx, row?: PortRow): Promise<void> {
  const session = ctx.session;
  if (!session) return;
  const answer = row
    ? String(row.guestPort)
    : await vscode.window.showInputBox({
        title: 'Forward a port from the MicroVM',
        prompt: 'Guest port number',
        validateInput: (value) =>
          /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65535
            ? undefined
            : 'Enter a port from 1 to 65535',
      });
  if (!answer) return;
  try {
    // A well-known service port is asked about instead (the same host port or not): one notification either way.
    const forwarded = await session.forward(Number(answer));
    if (!forwarded.offerSame)
      void showInfo(notice`Guest port ${answer} is forwarded to 127.0.0.1:${forwarded.hostPort}.`);
  } catch (err) {
    ctx.log.warn(`cannot forward guest port ${answer}: ${(err as Error).message}`);
    void showError(failureNotice(err, 'forward', Number(answer)), 'Show Log').then(
      (choice) => choice && ctx.log.show(),
    );
  }
}

/** "Refresh Type Definitions": the VM's node_modules types projected onto the folder now; the details go to the log. */
async function refreshTypes(ctx: Ctx): Promise<void> {
  let run;
  try {
    run = await ctx.session?.refreshTypes();
  } catch (err) {
    ctx.log.warn(`type projection: ${(err as Error).message}`);
    return;
  }
  if (!run) {
    void showInfo(
      notice`MicroVM: no type projection for this workspace (the microvm.typeProjection setting is off, or no volume covers node_modules).`,
    );
    return;
  }
  const [failure] = run.failures;
  if (failure) {
    const code = (failure.error as { code?: string }).code ?? 'error';
    void showWarning(
      notice`MicroVM: the type definitions were not refreshed (${code}); see the MicroVM log.`,
      'Show Log',
    ).then((choice) => choice && ctx.log.show());
    return;
  }
  const files = run.results.reduce((sum, r) => sum + r.declarations + r.packageJsons, 0);
  void showInfo(notice`MicroVM: type definitions refreshed (${files} files).`);
}

/** A new container: the image is built again where its inputs changed, the once-only hooks run again, the root's changes go. */
async function rebuild(ctx: Ctx): Promise<void> {
  const folder = ctx.folder();
  if (folder) await resetContainer(folder.uri.fsPath);
  await openFolder(ctx);
}
