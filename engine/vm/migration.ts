import * as fs from 'node:fs';
import * as net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { MicrovmError } from '../errors';
import { QmpClient } from '../qemu/qmp';
import type { QemuUser } from '../qemu/run-as';

/**
 * Saving and loading a VM's device state with QMP migration over a Unix socket: no `exec:`
 * migration (QEMU's seccomp sandbox forbids spawning) and no fd passing. With `ignoreShared`,
 * guest RAM in a shared file backend is left out of the stream (x-ignore-shared): the file
 * itself is the snapshot's memory.
 *
 * Saving: this process serves the socket and QEMU connects; when QEMU runs as another user
 * (`qemuUser`), the socket is handed to that user, the only one allowed to connect.
 */
export async function migrateOut(
  qmp: QmpClient,
  socketPath: string,
  stateFile: string,
  ignoreShared: boolean,
  qemuUser?: QemuUser,
): Promise<void> {
  const server = net.createServer();
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket) => {
      pipeline(socket, fs.createWriteStream(stateFile, { mode: 0o600 })).then(resolve, reject);
    });
  });
  await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once('error', reject));
  try {
    fs.chmodSync(socketPath, 0o600);
    if (qemuUser) fs.chownSync(socketPath, qemuUser.uid, qemuUser.gid);
    await setIgnoreShared(qmp, ignoreShared);
    await qmp.execute('migrate', { uri: `unix:${socketPath}` });
    await waitForMigration(qmp, 'save');
    await received;
  } finally {
    server.close();
    fs.rmSync(socketPath, { force: true });
  }
}

/**
 * Feeds the state to a QEMU started with `-incoming unix:socketPath` (it listens from start-up,
 * before dropping privileges). Capabilities are set before connecting: QEMU reads the stream
 * as soon as the connection arrives.
 */
export async function migrateIn(
  qmp: QmpClient,
  socketPath: string,
  stateFile: string,
  ignoreShared: boolean,
): Promise<void> {
  await setIgnoreShared(qmp, ignoreShared);
  // QEMU may close its end as soon as it has read the last section, before our end sees the
  // stream finish; the migration status, not the pipe, says whether the restore worked.
  const socket = net.connect(socketPath);
  const feeding = pipeline(fs.createReadStream(stateFile), socket).catch(() => undefined);
  await waitForMigration(qmp, 'restore');
  await feeding;
}

async function setIgnoreShared(qmp: QmpClient, state: boolean): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state }] });
}

interface MigrationStatus {
  status?: string;
  'error-desc'?: string;
}

async function waitForMigration(qmp: QmpClient, what: 'save' | 'restore'): Promise<void> {
  for (;;) {
    const info = (await qmp.execute('query-migrate')) as MigrationStatus;
    if (info.status === 'completed') return;
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new MicrovmError('E_SNAPSHOT', `the snapshot ${what} failed in QEMU: ${info['error-desc'] ?? info.status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
