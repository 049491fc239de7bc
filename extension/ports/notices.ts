import * as vscode from 'vscode';
import type { ForwardedPort } from '../../engine/index';
import { notice } from '../ui/notice-text';
import { showInfo, showWarning } from '../ui/notify';
import type { PortNotices } from '../../engine/index';

/**
 * How forward notices look in VS Code. The session decides which ports get one (the notice
 * budget); this only renders them: a notification, the browser, a question, or a summary.
 */
export function portNotices(): PortNotices {
  return {
    portForwarded: (port, action) => {
      if (action === 'openBrowser') {
        void vscode.env.openExternal(localUrl(port));
        return;
      }
      void showInfo(
        notice`Port ${port.guestPort} in the MicroVM is available at 127.0.0.1:${port.hostPort}.`,
        'Open in Browser',
      ).then((choice) => choice && vscode.env.openExternal(localUrl(port)));
    },
    confirmSameHostPort: askSameHostPort,
    portsSummary: (ports) => {
      void showInfo(
        notice`MicroVM: ${ports.length} new guest ports were forwarded to 127.0.0.1; see the Ports view for their addresses.`,
        'Show Ports',
      ).then((choice) => choice && vscode.commands.executeCommand('microvm.ports.focus'));
    },
  };
}

/**
 * A declared well-known service port (a database, say) went to a free host port: the same
 * one only if the user says so, since a host service may need it.
 */
export async function askSameHostPort(port: ForwardedPort): Promise<boolean> {
  const same = `Use 127.0.0.1:${port.guestPort}`;
  const choice = await showWarning(
    notice`MicroVM: guest port ${port.guestPort} is a well-known service port, forwarded to 127.0.0.1:${port.hostPort}. Use 127.0.0.1:${port.guestPort} instead? Only if no service on this machine needs it.`,
    same,
    'Keep',
  );
  return choice === same;
}

function localUrl(port: ForwardedPort): vscode.Uri {
  return vscode.Uri.parse(`http://127.0.0.1:${port.hostPort}/`);
}
