import * as vscode from 'vscode';

/**
 * The extension's entry point. Until the extension issue lands it only owns its output
 * channel; the engine is used from the `microvm` CLI.
 */
export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('MicroVM');
  context.subscriptions.push(output);
}

export function deactivate(): void {}
