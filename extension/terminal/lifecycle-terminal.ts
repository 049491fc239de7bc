import * as vscode from 'vscode';

const ICON = new vscode.ThemeIcon('vm');

/**
 * One read-only terminal for the lifecycle hooks' output, each line led by its hook's name
 * (`[postCreateCommand: db]`), so parallel entries stay apart. Created at the first output.
 */
export class LifecycleTerminal implements vscode.Disposable {
  private terminal: vscode.Terminal | undefined;
  private readonly writer = new vscode.EventEmitter<string>();
  private readonly pending: string[] = [];
  private opened = false;
  /** Per label: whether its last chunk ended mid-line. */
  private readonly midLine = new Map<string, boolean>();

  write(label: string, chunk: string): void {
    const lines = chunk.replace(/\r?\n/g, '\n').split('\n');
    let text = '';
    lines.forEach((line, i) => {
      const last = i === lines.length - 1;
      if (last && line === '') return;
      const continuing = i === 0 && this.midLine.get(label);
      text += `${continuing ? '' : `\x1b[2m[${label}]\x1b[0m `}${line}${last ? '' : '\r\n'}`;
    });
    this.midLine.set(label, !chunk.endsWith('\n'));
    this.emit(text);
  }

  /** A line of its own (a hook starts or ends). */
  note(text: string): void {
    this.emit(`\x1b[1m${text}\x1b[0m\r\n`);
  }

  show(): void {
    this.ensure().show(true);
  }

  private emit(text: string): void {
    this.ensure();
    if (this.opened) this.writer.fire(text);
    else this.pending.push(text);
  }

  private ensure(): vscode.Terminal {
    this.terminal ??= vscode.window.createTerminal({
      name: 'MicroVM: lifecycle',
      iconPath: ICON,
      pty: {
        onDidWrite: this.writer.event,
        open: () => {
          this.opened = true;
          for (const text of this.pending.splice(0)) this.writer.fire(text);
        },
        close: () => {
          this.terminal = undefined;
          this.opened = false;
        },
      },
    });
    return this.terminal;
  }

  dispose(): void {
    this.terminal?.dispose();
    this.writer.dispose();
  }
}
