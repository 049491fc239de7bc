import * as vscode from 'vscode';
import type { Ctx } from '../context';
import type { Session } from '../../engine/index';
import { StartProcess } from './guest-terminal';
import { guestPseudoterminal } from './pty';

const ICON = new vscode.ThemeIcon('vm');

function starter(session: Session, argv: () => Promise<string[]>): StartProcess {
  return async (size) => session.spawnPty(await argv(), size);
}

/** The options of a MicroVM shell terminal; also what the terminal profile provides. */
export function shellTerminalOptions(session: Session): vscode.ExtensionTerminalOptions {
  return {
    name: 'MicroVM',
    color: new vscode.ThemeColor('terminal.ansiGreen'),
    iconPath: ICON,
    pty: guestPseudoterminal(starter(session, async () => [session.shell])),
  };
}

export function openShellTerminal(ctx: Ctx): vscode.Terminal | undefined {
  const session = ctx.session;
  if (!session?.isRunning) return undefined;
  const terminal = vscode.window.createTerminal(shellTerminalOptions(session));
  terminal.show();
  return terminal;
}
