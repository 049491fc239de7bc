import * as vscode from 'vscode';
import { COMMANDS } from './commands';
import { Ctx } from './context';
import { openFolder } from './vm/open-folder';
import { hangUpOnUserClose, shellTerminalOptions } from './terminal/terminals';
import { reattach } from './vm/reattach';

let ctx: Ctx | undefined;

/** Builds the one context object; everything the extension owns hangs off it. */
export function activate(extension: vscode.ExtensionContext): void {
  ctx = new Ctx(extension, COMMANDS);
  const owner = ctx;
  owner.own(
    vscode.window.registerTerminalProfileProvider('microvm.terminal', {
      async provideTerminalProfile() {
        const session = await openFolder(owner, { terminal: false });
        if (!session) throw new Error('the MicroVM did not start; see "MicroVM: Show Log"');
        return new vscode.TerminalProfile(shellTerminalOptions(session));
      },
    }),
  );
  owner.own(hangUpOnUserClose(owner));
  extension.subscriptions.push({ dispose: () => void owner.dispose() });
  // The folder's VM may outlive the previous window: attach to it (nothing starts otherwise).
  owner.reattaching = reattach(owner).catch((err: Error) => owner.log.warn(`reattach: ${err.message}`));
}

/** Detaches from the VM when VS Code shuts the extension down (a reload reattaches; the supervisor's idle stop ends it otherwise). */
export async function deactivate(): Promise<void> {
  const current = ctx;
  ctx = undefined;
  await current?.dispose();
}
