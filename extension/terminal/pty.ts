import * as vscode from 'vscode';
import { GuestTerminal, StartProcess } from './guest-terminal';

/** A vscode.Pseudoterminal over a GuestTerminal: the thin layer that touches VS Code. */
export function guestPseudoterminal(start: StartProcess): vscode.Pseudoterminal {
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
    close: () => {
      terminal.close();
      write.dispose();
      close.dispose();
    },
  };
}
