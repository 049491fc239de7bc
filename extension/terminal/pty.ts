import * as vscode from 'vscode';
import { GuestTerminal, StartProcess } from './guest-terminal';

/**
 * A vscode.Pseudoterminal over a GuestTerminal: the thin layer that touches VS Code.
 * `hangUpOnClose` false: closing the pseudoterminal leaves the guest process running (a
 * supervised terminal, which the user's own close hangs up through `hangUp`).
 */
export function guestPseudoterminal(
  start: StartProcess,
  hangUpOnClose = true,
): vscode.Pseudoterminal & { hangUp(): void } {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number | void>();
  const terminal = new GuestTerminal(start, {
    write: (text) => write.fire(text),
    close: (code) => close.fire(code),
  });
  return {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: (size) => terminal.open(size ? { rows: size.rows, cols: size.columns } : undefined),
    handleInput: (data) => terminal.input(data),
    setDimensions: (size) => terminal.resize({ rows: size.rows, cols: size.columns }),
    hangUp: () => terminal.close(true),
    close: () => {
      terminal.close(hangUpOnClose);
      write.dispose();
      close.dispose();
    },
  };
}
