import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createMessageConnection, ResponseError, SocketMessageReader, SocketMessageWriter } from 'vscode-jsonrpc/node';
import { isMicrovmError, Requests, SupervisorClient, supervisorFiles } from '../../engine';

/**
 * SupervisorClient.up({ signal }) without a VM: the supervisor is a stand-in speaking the same
 * JSON-RPC on the workspace's socket. Its `up` runs until a `down` arrives, as a start does when
 * its window's Cancel sends one; then it fails the `up` and closes, as the real one ends.
 */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-sv-abort-'));
const savedHome = process.env.MICROVM_HOME;
process.env.MICROVM_HOME = root;

after(() => {
  if (savedHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = savedHome;
  fs.rmSync(root, { recursive: true, force: true });
});

interface StandIn {
  ups: number;
  downs: number;
  upArrived: Promise<void>;
  close(): Promise<void>;
}

async function standInSupervisor(workspaceId: string): Promise<StandIn> {
  const files = supervisorFiles(workspaceId);
  fs.mkdirSync(path.dirname(files.socket), { recursive: true, mode: 0o700 });
  let upArrived: () => void = () => undefined;
  const state: StandIn = {
    ups: 0,
    downs: 0,
    upArrived: new Promise((resolve) => (upArrived = resolve)),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = net.createServer((socket) => {
    const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
    let cancel: () => void = () => undefined;
    connection.onRequest(Requests.hello, () => ({
      pid: process.pid,
      workspaceId,
      folder: root,
      state: 'idle' as const,
      backlog: [],
    }));
    connection.onRequest(Requests.up, () => {
      state.ups++;
      upArrived();
      return new Promise<never>((_, reject) => {
        cancel = () => reject(new ResponseError(1, 'the start was cancelled', { code: 'E_CANCELLED' }));
      });
    });
    connection.onRequest(Requests.down, () => {
      state.downs++;
      cancel();
      // The supervisor ends once its VM is down: the connection closes after the answer.
      setTimeout(() => socket.end(), 10);
    });
    connection.listen();
  });
  await new Promise<void>((resolve) => server.listen(files.socket, resolve));
  return state;
}

const UP = { settings: {}, allowLocalEnv: [] } as unknown as Parameters<SupervisorClient['up']>[0];
const QUESTIONS = { configChanged: async () => 'cancel' as const, overLimits: async () => false };

test("aborting up()'s signal while the workspace opens sends down and rejects E_ABORTED", async () => {
  const id = '0123456789abcdef';
  const standIn = await standInSupervisor(id);
  try {
    const client = await SupervisorClient.existing(id, 'cli');
    assert.ok(client, 'the client attached to the stand-in');
    const controller = new AbortController();
    const opening = client.up(UP, QUESTIONS, { signal: controller.signal });
    await standIn.upArrived;
    controller.abort();
    await assert.rejects(opening, (err) => isMicrovmError(err, 'E_ABORTED'));
    assert.equal(standIn.downs, 1, 'the abort reached the supervisor as one down');
    client.close();
  } finally {
    await standIn.close();
  }
});

test('up() with a signal aborted already rejects E_ABORTED and asks the supervisor nothing', async () => {
  const id = 'fedcba9876543210';
  const standIn = await standInSupervisor(id);
  try {
    const client = await SupervisorClient.existing(id, 'cli');
    assert.ok(client);
    await assert.rejects(client.up(UP, QUESTIONS, { signal: AbortSignal.abort() }), (err) =>
      isMicrovmError(err, 'E_ABORTED'),
    );
    assert.deepEqual([standIn.ups, standIn.downs], [0, 0]);
    client.close();
  } finally {
    await standIn.close();
  }
});
