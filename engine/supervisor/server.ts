import * as fs from 'node:fs';
import * as net from 'node:net';
import { ResponseError } from 'vscode-jsonrpc/node';
import { errorToWire } from './wire-error';
import { openWorkspace } from '../workspace/record';
import { ClientLink } from './client-link';
import { acquireStartLock } from './lock';
import { LogFile } from './log-file';
import { supervisorFiles, supervisorsDir } from './paths';
import { ErrorData, Requests } from './protocol';
import { WorkspaceHost } from './workspace-host';

/** The default of microvm.idleStopMinutes / --idle-stop-minutes: the VM stops after this long with no window or CLI attached. */
export const DEFAULT_IDLE_STOP_MINUTES = 30;
/** A supervisor nobody connects to (its starter died) exits after this. */
const FIRST_CLIENT_GRACE_MS = 30_000;

/** What runSupervisor needs: the folder, and when an unattached VM stops. */
export interface SupervisorOptions {
  folder: string;
  /** 0 = never; fractions allowed (tests). */
  idleStopMinutes: number;
}

/**
 * Runs a workspace's supervisor until the VM is stopped (`down`, idle, the VM ended, SIGTERM):
 * takes the start lock (another supervisor of the workspace alive: returns false at once),
 * replaces a stale socket, serves clients on it. QEMU and virtiofsd run through the engine's
 * launcher with this process as their parent, so they die with it even on SIGKILL.
 */
export async function runSupervisor(options: SupervisorOptions): Promise<boolean> {
  const record = openWorkspace(options.folder);
  const files = supervisorFiles(record.id);
  fs.mkdirSync(supervisorsDir(), { recursive: true, mode: 0o700 });
  fs.chmodSync(supervisorsDir(), 0o700);
  const logFile = new LogFile(files.log);
  const log = (line: string) => logFile.line(`[${process.pid}] ${line}`);
  const lock = await acquireStartLock(files.lockName);
  if (!lock) {
    log(`another supervisor of ${record.folder} holds the start lock: leaving it to serve`);
    return false;
  }
  fs.rmSync(files.socket, { force: true });
  const server = net.createServer();
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(files.socket, resolve);
    });
  } finally {
    process.umask(previousUmask);
  }
  fs.chmodSync(files.socket, 0o600);
  fs.writeFileSync(files.pid, `${process.pid}\n`, { mode: 0o600 });
  log(
    `supervising ${record.folder} (workspace ${record.id}) on ${files.socket}, idle stop ${options.idleStopMinutes} min`,
  );

  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  let idleTimer: NodeJS.Timeout | undefined;
  let exiting = false;
  const exit = async (why: string) => {
    if (exiting) return;
    exiting = true;
    clearTimeout(idleTimer);
    log(`stopping: ${why}`);
    // New clients find no socket and start the next supervisor, which gets the lock once this one lets go.
    server.close();
    fs.rmSync(files.socket, { force: true });
    await host.stop();
    // Give the last replies (down's) a moment to reach their clients.
    await new Promise((resolve) => setTimeout(resolve, 100));
    fs.rmSync(files.pid, { force: true });
    lock.close();
    // A client that sees its connection close may start the next supervisor at once.
    for (const client of host.clients) client.close();
    log('stopped');
    finished();
  };
  const host = new WorkspaceHost(record.folder, record.id, options.idleStopMinutes, log, (why) => void exit(why));
  const idleCheck = () => {
    clearTimeout(idleTimer);
    idleTimer = undefined;
    if (host.clients.size > 0 || exiting) return;
    if (host.state !== 'running' && host.state !== 'starting') {
      void exit('no VM and no client');
      return;
    }
    if (options.idleStopMinutes <= 0) return;
    log(`no client attached: the VM stops in ${options.idleStopMinutes} min unless one attaches`);
    idleTimer = setTimeout(
      () => void exit(`idle for ${options.idleStopMinutes} min with no client attached`),
      options.idleStopMinutes * 60_000,
    );
  };
  idleTimer = setTimeout(() => void exit('no client connected after the start'), FIRST_CLIENT_GRACE_MS);
  server.on('connection', (socket) => {
    clearTimeout(idleTimer);
    const link = new ClientLink(socket, log);
    host.clients.add(link);
    link.onClose(() => {
      host.clients.delete(link);
      host.processes.dropClient(link);
      idleCheck();
    });
    serve(link, host, async () => {
      await host.stop();
      // The reply goes out first; the supervisor ends right after.
      setImmediate(() => void exit('down'));
    });
    link.connection.listen();
  });
  process.on('SIGTERM', () => void exit('SIGTERM'));
  process.on('SIGINT', () => void exit('SIGINT'));
  process.on('SIGHUP', () => undefined);
  await done;
  return true;
}

/** The requests a client may make, each answered from the host; engine errors keep their code. */
function serve(link: ClientLink, host: WorkspaceHost, down: () => Promise<void>): void {
  const c = link.connection;
  // Thrown ResponseErrors become error replies; a synchronous handler replies before any later notification.
  const guarded =
    <P, R>(handler: (params: P) => R | Promise<R>) =>
    (params: P): R | Promise<R> => {
      try {
        const result = handler(params);
        return result instanceof Promise
          ? result.catch((err: unknown) => {
              throw asResponseError(err);
            })
          : result;
      } catch (err) {
        throw asResponseError(err);
      }
    };
  c.onRequest(
    Requests.hello,
    guarded(({ kind, asksHosts }) => {
      link.kind = kind;
      link.asksHosts = asksHosts === true;
      return {
        pid: process.pid,
        workspaceId: host.workspaceId,
        folder: host.folder,
        state: host.state,
        ...(host.vmId ? { vmId: host.vmId } : {}),
        ...(host.configFile === undefined ? {} : { configFile: host.configFile }),
        ...(host.upResult ? { up: host.upResult } : {}),
        backlog: host.backlogEvents(),
      };
    }),
  );
  c.onRequest(
    Requests.up,
    guarded((params) => {
      if (params.askForHosts) link.asksHosts = true;
      return host.up(params, link);
    }),
  );
  c.onRequest(
    Requests.status,
    guarded(() => host.status()),
  );
  c.onRequest(
    Requests.down,
    guarded(() => down()),
  );
  c.onRequest(
    Requests.spawn,
    guarded((params) => ({ id: host.spawn(params, link) })),
  );
  c.onRequest(
    Requests.list,
    guarded(() => host.processes.list()),
  );
  c.onRequest(
    Requests.attach,
    guarded(({ id }) => {
      const { replay, dropped } = host.processes.attach(id, link);
      return { replay: replay.toString('base64'), dropped };
    }),
  );
  c.onRequest(
    Requests.detach,
    guarded(({ id }) => host.processes.detach(id, link)),
  );
  c.onRequest(
    Requests.write,
    guarded(({ id, data }) => host.processes.get(id).child.writeStdin(Buffer.from(data, 'base64'))),
  );
  c.onRequest(
    Requests.closeStdin,
    guarded(({ id }) => host.processes.get(id).child.closeStdin()),
  );
  c.onRequest(
    Requests.resize,
    guarded(({ id, rows, cols }) => host.processes.get(id).child.resize(rows, cols)),
  );
  c.onRequest(
    Requests.signal,
    guarded(({ id, signal }) => host.processes.get(id).child.signal(signal)),
  );
  c.onRequest(
    Requests.kill,
    guarded(({ id }) => host.processes.get(id).child.signal('SIGKILL')),
  );
  c.onRequest(
    Requests.portState,
    guarded(() => {
      const session = host.running;
      const state = session.portState();
      return {
        config: session.plan.ports,
        listeners: [...state.listeners],
        forwards: [...state.forwards],
        notForwarded: [...state.notForwarded],
        ...(session.plan.compose
          ? { primaryService: session.plan.compose.primary, serviceForwards: session.serviceForwards }
          : {}),
      };
    }),
  );
  c.onRequest(
    Requests.forward,
    guarded(({ guestPort }) => host.running.forward(guestPort)),
  );
  c.onRequest(
    Requests.unforward,
    guarded(({ guestPort, byUser }) => host.running.unforward(guestPort, byUser)),
  );
  c.onRequest(
    Requests.useSameHostPort,
    guarded(({ guestPort }) => host.running.useSameHostPort(guestPort)),
  );
  c.onRequest(
    Requests.retryHook,
    guarded(({ retryId }) => host.retryHook(retryId)),
  );
  c.onRequest(
    Requests.resume,
    guarded(() => host.running.resume()),
  );
  c.onRequest(
    Requests.refreshTypes,
    guarded(() => host.refreshTypes()),
  );
}

function asResponseError(err: unknown): ResponseError<ErrorData> {
  return new ResponseError<ErrorData>(1, (err as Error)?.message ?? String(err), errorToWire(err));
}
