import * as vscode from 'vscode';
import { Ctx } from './context';
import { openFolder } from './vm/open-folder';
import { shellTerminalOptions } from './terminal/terminals';

let ctx: Ctx | undefined;

/** Builds the one context object; everything the extension owns hangs off it. */
export function activate(extension: vscode.ExtensionContext): void {
  ctx = new Ctx(extension);
  const owner = ctx;
  owner.own(vscode.window.registerTerminalProfileProvider('microvm.terminal', {
    async provideTerminalProfile() {
      const session = await openFolder(owner, { terminal: false });
      if (!session) throw new Error('the MicroVM did not start; see "MicroVM: Show Log"');
      return new vscode.TerminalProfile(shellTerminalOptions(session));
    },
  }));
  extension.subscriptions.push({ dispose: () => void owner.dispose() });
}

/** Stops the VM (and with it every forward and guest process) when VS Code shuts the extension down. */
export async function deactivate(): Promise<void> {
  const current = ctx;
  ctx = undefined;
  await current?.dispose();
}
