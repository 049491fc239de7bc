import * as vscode from 'vscode';
import { readSettings, settingValue, Settings } from './config/settings';
import { PortsView } from './ports/ports-view';
import { sessionRows } from './ports/rules';
import { AccelSummary, statusView, VmStatus } from './ui/status';
import { StatusBar } from './ui/status-bar';
import { LifecycleTerminal } from './terminal/lifecycle-terminal';
import type { SupervisedWorkspace } from './vm/supervised';

type Command = (...args: never[]) => unknown;

/** A command's implementation while a VM runs, and (optionally) while none does. */
export interface CommandFactory {
  running(ctx: Ctx): Command;
  stopped?(ctx: Ctx): Command;
}

/** Command name -> its factories: `commands.ts`'s table, handed to Ctx by activate(). */
export type CommandTable = Readonly<Record<string, CommandFactory>>;

/**
 * The extension's one context object: it owns the output channel, the status bar, the Ports
 * view, the running session and every Disposable. Other modules get it as a parameter.
 */
export class Ctx implements vscode.Disposable {
  readonly log = vscode.window.createOutputChannel('MicroVM', { log: true });
  readonly lifecycle = new LifecycleTerminal();
  readonly statusBar = new StatusBar();
  readonly portsView = new PortsView();
  /** The workspace VM this window is attached to (its supervisor owns it). */
  session: SupervisedWorkspace | undefined;
  /** The attach to a VM that outlived the previous window, while it runs (opening waits for it). */
  reattaching: Promise<unknown> = Promise.resolve();
  accel: AccelSummary | undefined;
  private status: VmStatus = 'stopped';
  private detail = '';
  private readonly disposables: vscode.Disposable[] = [];
  private commandDisposables: vscode.Disposable[] = [];
  private commandsRunning: boolean | undefined;

  constructor(
    readonly extension: vscode.ExtensionContext,
    private readonly commands: CommandTable,
  ) {
    this.disposables.push(
      this.log,
      this.lifecycle,
      this.statusBar,
      this.portsView,
      vscode.window.registerTreeDataProvider('microvm.ports', this.portsView),
    );
    this.setStatus('stopped');
  }

  settings(): Settings {
    const config = vscode.workspace.getConfiguration('microvm');
    return readSettings((key) => settingValue(key, config.get(key), config.inspect(key)));
  }

  folder(): vscode.WorkspaceFolder | undefined {
    return vscode.workspace.workspaceFolders?.[0];
  }

  setStatus(status: VmStatus, detail = ''): void {
    this.status = status;
    this.detail = detail;
    this.statusBar.render(statusView(status, this.accel, detail));
    void vscode.commands.executeCommand('setContext', 'microvm.running', status === 'ready');
    this.registerCommands(status === 'ready');
  }

  setAccel(accel: AccelSummary): void {
    this.accel = accel;
    this.statusBar.render(statusView(this.status, accel, this.detail));
  }

  refreshPorts(): void {
    this.portsView.update(this.session ? sessionRows(this.session) : []);
  }

  /** Disposed with the extension. */
  own(disposable: vscode.Disposable): void {
    this.disposables.push(disposable);
  }

  /**
   * Commands come from a table of factories; each has a variant for when no VM runs, and the
   * table is registered again when that changes.
   */
  private registerCommands(running: boolean): void {
    if (this.commandsRunning === running) return;
    this.commandsRunning = running;
    for (const d of this.commandDisposables.splice(0)) d.dispose();
    for (const [name, factory] of Object.entries(this.commands)) {
      const make = running || !factory.stopped ? factory.running : factory.stopped;
      this.commandDisposables.push(vscode.commands.registerCommand(name, make(this)));
    }
  }

  /** The window goes (closed or reloaded): it detaches, and the VM keeps running for the next window until its idle stop. */
  async dispose(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    session?.detach();
    for (const d of [...this.commandDisposables.splice(0), ...this.disposables.splice(0)]) d.dispose();
  }
}
