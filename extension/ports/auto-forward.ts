import * as vscode from 'vscode';
import type { Ctx } from '../context';
import { Session } from '../vm/session';
import { autoForwardAction, portsToForward } from './rules';
import { notice } from '../ui/notice-text';
import { showInfo } from '../ui/notify';

/**
 * Forwards ports as they appear in the guest and honours onAutoForward: notify shows a
 * message with "Open in Browser", openBrowser opens it, silent says nothing, ignore skips it.
 */
export async function autoForward(ctx: Ctx, session: Session): Promise<void> {
  const attributes = session.plan.portsAttributes;
  const ports = portsToForward(session.detected, { has: (port) => session.isForwarding(port) }, session.stoppedByUser, attributes);
  for (const port of ports) {
    try {
      const forwarder = await session.forward(port);
      const url = vscode.Uri.parse(`http://127.0.0.1:${forwarder.localAddr.port}/`);
      const action = autoForwardAction(port, attributes);
      if (action === 'openBrowser') void vscode.env.openExternal(url);
      if (action === 'notify') {
        void showInfo(notice`Port ${port} in the MicroVM is available at 127.0.0.1:${forwarder.localAddr.port}.`, 'Open in Browser')
          .then((choice) => choice && vscode.env.openExternal(url));
      }
    } catch (err) {
      ctx.log.warn(`cannot forward guest port ${port}: ${(err as Error).message}`);
    }
  }
  ctx.refreshPorts();
}

/** Forwards the configured forwardPorts at start, whether or not anything listens yet. */
export async function forwardConfigured(ctx: Ctx, session: Session): Promise<void> {
  for (const port of session.plan.forwardPorts) {
    try {
      await session.forward(port);
    } catch (err) {
      ctx.log.warn(`cannot forward configured port ${port}: ${(err as Error).message}`);
    }
  }
}
