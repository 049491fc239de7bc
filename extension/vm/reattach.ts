import { performance } from 'node:perf_hooks';
import { SupervisorClient } from '../../engine/index';
import type { Ctx } from '../context';
import { openShellTerminal } from '../terminal/terminals';
import { askEgress } from './egress-offer';
import { SupervisedWorkspace } from './supervised';
import { failed } from './open-folder';
import { renderEvents } from './workspace-events';

/**
 * At activation (a window reload, or a second window on the folder): when the folder's VM
 * runs under its supervisor, attach to it without asking: the status bar, the Ports view, the
 * log it missed, and one terminal per live pty with its recent output replayed. Nothing is
 * started when none runs. Resolves to how long it took (ms), or undefined.
 */
export async function reattach(ctx: Ctx): Promise<number | undefined> {
  const folder = ctx.folder();
  if (!folder || ctx.session) return undefined;
  const started = performance.now();
  const { askForHosts } = ctx.settings();
  const client = await SupervisorClient.connect(folder.uri.fsPath, {
    kind: 'extension',
    start: false,
    asksHosts: askForHosts,
  }).catch((err: Error) => {
    ctx.log.warn(`cannot reach the workspace supervisor: ${err.message}`);
    return undefined;
  });
  if (!client) return undefined;
  const up = client.hello.up;
  if (!up) {
    client.close();
    return undefined;
  }
  if (askForHosts) client.askEgress = askEgress;
  const workspace = new SupervisedWorkspace(client, up.remoteWorkspaceFolder);
  workspace.configFile = client.hello.configFile;
  renderEvents(ctx, workspace, {
    onProgress: () => undefined,
    onExited: (error) => void failed(ctx, error, 'exited'),
  });
  for (const event of client.hello.backlog) if (event.type === 'log') ctx.log.info(event.line);
  ctx.session = workspace;
  ctx.setAccel({ accel: up.accel, isolation: up.emulated ? 'emulated' : 'hardware' });
  const [processes] = await Promise.all([client.list(), workspace.refreshPorts()]);
  ctx.setStatus('ready', `Workspace at ${up.remoteWorkspaceFolder}`);
  ctx.refreshPorts();
  const terminals = processes.filter((p) => p.tty && p.persistent);
  for (const proc of terminals) openShellTerminal(ctx, proc.id);
  const ms = performance.now() - started;
  ctx.log.info(`reattached to VM ${up.containerId} in ${ms.toFixed(0)} ms (${terminals.length} terminal(s) reopened)`);
  return ms;
}
