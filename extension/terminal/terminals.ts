import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { loginShell, Session } from '../../engine/index';
import { StartProcess } from './guest-terminal';
import { guestPseudoterminal } from './pty';

const ICON = new vscode.ThemeIcon('vm');

/** The image's default shell, from the guest's /etc/passwd. */
export async function guestShell(session: Session): Promise<string> {
  try {
    return loginShell((await session.running.readFile('/etc/passwd')).toString('utf8'));
  } catch {
    return '/bin/sh';
  }
}

function starter(session: Session, argv: () => Promise<string[]>): StartProcess {
  return async (size) => session.spawnPty(await argv(), size);
}

/** The options of a MicroVM shell terminal; also what the terminal profile provides. */
export function shellTerminalOptions(session: Session): vscode.ExtensionTerminalOptions {
  return {
    name: 'MicroVM',
    color: new vscode.ThemeColor('terminal.ansiGreen'),
    iconPath: ICON,
    pty: guestPseudoterminal(starter(session, async () => [await guestShell(session)])),
  };
}

export function openShellTerminal(ctx: Ctx): vscode.Terminal | undefined {
  const session = ctx.session;
  if (!session?.isRunning) return undefined;
  const terminal = vscode.window.createTerminal(shellTerminalOptions(session));
  terminal.show();
  return terminal;
}
