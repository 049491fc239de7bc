import * as vscode from 'vscode';
import { PortRow, portTree, type ServiceGroup } from './rules';

type Node = PortRow | ServiceGroup;

/**
 * The Ports view: one row per guest port, forwarded or configured; in a compose workspace,
 * grouped by service (the workspace's own first). Every string here is plain text (labels,
 * descriptions and a string tooltip are not rendered as markdown); the process name comes
 * from the guest and the label and service names from the config, all already made one plain
 * line by portRows() and sessionRows().
 */
export class PortsView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private rows: PortRow[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  update(rows: PortRow[]): void {
    this.rows = rows;
    this.changed.fire();
  }

  getChildren(element?: Node): Node[] {
    return portTree(this.rows, element);
  }

  getTreeItem(node: Node): vscode.TreeItem {
    return 'group' in node ? groupItem(node) : portItem(node);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

function groupItem(node: ServiceGroup): vscode.TreeItem {
  const item = new vscode.TreeItem(node.group, vscode.TreeItemCollapsibleState.Expanded);
  item.id = `service-${node.group}`;
  item.iconPath = new vscode.ThemeIcon('server-process');
  item.tooltip = `Compose service ${node.group}`;
  item.contextValue = 'microvm.service';
  return item;
}

function portItem(row: PortRow): vscode.TreeItem {
  const item = new vscode.TreeItem(row.label ? `${row.guestPort} (${row.label})` : String(row.guestPort));
  item.id = `port-${row.service ?? ''}-${row.guestPort}`;
  const state = row.localAddress ?? (row.note || 'not forwarded');
  item.description = [state, row.process].filter(Boolean).join('  ·  ');
  const where = row.service ? `Port ${row.guestPort} of service ${row.service}` : `Guest port ${row.guestPort}`;
  const tooltip = `${where}${row.process ? `, ${row.process}` : ''}: ${row.localAddress ? `forwarded to ${row.localAddress}` : state}`;
  item.tooltip = tooltip;
  item.accessibilityInformation = { label: tooltip };
  // Another service's forward is the configuration's (forwardPorts): it can be opened and copied, not stopped here.
  const other = row.serviceForward === true;
  item.contextValue = row.localAddress
    ? other
      ? 'microvm.servicePort.forwarded'
      : 'microvm.port.forwarded'
    : 'microvm.port.unforwarded';
  item.iconPath = new vscode.ThemeIcon(row.localAddress ? 'radio-tower' : 'circle-outline');
  return item;
}
