import * as vscode from 'vscode';
import { PortRow } from './rules';

/**
 * The Ports view: one row per guest port, forwarded or configured. Every string here is
 * plain text (labels, descriptions and a string tooltip are not rendered as markdown); the
 * process name comes from the guest and the label from the config, both already made one
 * plain line by portRows().
 */
export class PortsView implements vscode.TreeDataProvider<PortRow>, vscode.Disposable {
  private rows: PortRow[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  update(rows: PortRow[]): void {
    this.rows = rows;
    this.changed.fire();
  }

  getChildren(element?: PortRow): PortRow[] {
    return element ? [] : this.rows;
  }

  getTreeItem(row: PortRow): vscode.TreeItem {
    const item = new vscode.TreeItem(row.label ? `${row.guestPort} (${row.label})` : String(row.guestPort));
    item.id = `port-${row.guestPort}`;
    const state = row.localAddress ?? (row.note || 'not forwarded');
    item.description = [state, row.process].filter(Boolean).join('  ·  ');
    const tooltip = `Guest port ${row.guestPort}${row.process ? `, ${row.process}` : ''}: ${row.localAddress ? `forwarded to ${row.localAddress}` : state}`;
    item.tooltip = tooltip;
    item.accessibilityInformation = { label: tooltip };
    item.contextValue = row.localAddress ? 'microvm.port.forwarded' : 'microvm.port.unforwarded';
    item.iconPath = new vscode.ThemeIcon(row.localAddress ? 'radio-tower' : 'circle-outline');
    return item;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
