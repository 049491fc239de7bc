import * as vscode from 'vscode';
import type { Ctx } from '../context';
import type { SupervisedWorkspace } from '../vm/supervised';
import { guestPseudoterminal } from './pty';

const ICON = new vscode.ThemeIcon('vm');

/**
 * The options of a MicroVM shell terminal (also what the terminal profile provides): a pty
 * the workspace's supervisor holds, new, or an existing one (`ptyId`) after a window reload,
 * its recent output replayed. The user closing the terminal hangs it up; the window closing
 * or reloading leaves it running.
 */
export function shellTerminalOptions(workspace: SupervisedWorkspace, ptyId?: number): vscode.ExtensionTerminalOptions {
  const pty = guestPseudoterminal(
    (size) => (ptyId === undefined ? workspace.spawnTerminal(size) : workspace.attachTerminal(ptyId)),
    false,
  );
  return { name: 'MicroVM', color: new vscode.ThemeColor('terminal.ansiGreen'), iconPath: ICON, pty };
}

/** Hangs up the guest pty when the user (not a window shutdown) closes one of our terminals. */
export function hangUpOnUserClose(ctx: Ctx): vscode.Disposable {
  return vscode.window.onDidCloseTerminal((terminal) => {
    const options = terminal.creationOptions as vscode.ExtensionTerminalOptions;
    const pty = options?.pty as (vscode.Pseudoterminal & { hangUp?(): void }) | undefined;
    if (!pty?.hangUp || terminal.exitStatus?.reason === vscode.TerminalExitReason.Shutdown) return;
    if (ctx.session?.isRunning) pty.hangUp();
  });
}

export function openShellTerminal(ctx: Ctx, ptyId?: number): vscode.Terminal | undefined {
  const session = ctx.session;
  if (!session?.isRunning) return undefined;
  const terminal = vscode.window.createTerminal(shellTerminalOptions(session, ptyId));
  terminal.show();
  return terminal;
}
