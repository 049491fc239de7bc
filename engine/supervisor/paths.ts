import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { MicrovmError } from '../errors';
import { microvmHome } from '../paths';

/**
 * Where a workspace's supervisor lives: $MICROVM_HOME/supervisors/ (0700), one socket (0600),
 * pid file and log per workspace id. Not under run/: the engine reaps every ownerless entry
 * of its run dir, and a supervisor's files are not VM state directories.
 */
export function supervisorsDir(): string {
  return path.join(microvmHome(), 'supervisors');
}

/** The longest path a Unix socket address takes on Linux (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

/** Where a workspace's supervisor keeps its socket, pid file and log. */
export interface SupervisorFiles {
  socket: string;
  pid: string;
  log: string;
  /** The abstract-namespace socket name held while the supervisor lives (the start lock). */
  lockName: string;
}

/** The supervisor files of a workspace id; throws E_STATE_DIR when the socket path would be too long. */
export function supervisorFiles(workspaceId: string): SupervisorFiles {
  if (!/^[0-9a-f]{16}$/.test(workspaceId)) throw new Error(`not a workspace id: ${JSON.stringify(workspaceId)}`);
  const dir = supervisorsDir();
  const socket = path.join(dir, `${workspaceId}.sock`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new MicrovmError(
      'E_STATE_DIR',
      `the supervisor socket path ${socket} is ${Buffer.byteLength(socket)} bytes, over the ${MAX_SOCKET_PATH} a Unix socket allows, so the workspace VM cannot be supervised; set MICROVM_HOME to a shorter path`,
    );
  }
  const home = createHash('sha256').update(microvmHome()).digest('hex').slice(0, 12);
  return {
    socket,
    pid: path.join(dir, `${workspaceId}.pid`),
    log: path.join(dir, `${workspaceId}.log`),
    lockName: `\0microvm-supervisor-${process.getuid?.() ?? 0}-${home}-${workspaceId}`,
  };
}
