import * as vscode from 'vscode';
import { StatusView } from './status';

/** The one status bar item; what it shows comes from statusView(). */
export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('microvm.status', vscode.StatusBarAlignment.Left, 10);

  constructor() {
    this.item.name = 'MicroVM';
    this.item.show();
  }

  render(view: StatusView): void {
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = view.command;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
