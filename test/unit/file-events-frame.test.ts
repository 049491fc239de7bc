import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentClient, GuestFileEvent } from '../../engine/agent/client';
import type { AgentConnection } from '../../engine/agent/connection';
import { parseTlv, TlvWriter } from '../../engine/agent/tlv';
import { FileEventRelay } from '../../engine/watch/relay';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-file-events-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** One TLV field as the wire has it: u16 tag, u32 length, value. */
function field(tag: number, value: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt16LE(tag, 0);
  head.writeUInt32LE(value.length, 2);
  return Buffer.concat([head, value]);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value, 0);
  return b;
}

/** The payloads an AgentClient would send, answered with an empty OK. */
function capturingClient(): { client: AgentClient; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const connection = {
    request: (body: TlvWriter) => {
      sent.push(body.toBuffer());
      return Promise.resolve(parseTlv(Buffer.alloc(0)));
    },
    deadline: <T>(call: Promise<T>) => call,
  } as unknown as AgentConnection;
  return { client: new AgentClient(connection, {} as AgentClient['info']), sent };
}

test('FILE_EVENTS request: OP, PATH, then per event a FILE_EVENT of EVENT_KIND and EVENT_PATH only (tags 57-58 are retired)', async () => {
  const { client, sent } = capturingClient();
  await client.fileEvents('/workspace', [
    { kind: 'MODIFY', path: 'src/a.ts' },
    { kind: 'DIR_CHANGED', path: '' },
  ]);
  // Spelled out byte by byte, not with TlvWriter: this is the format the agent parses (protocol.md).
  const expected = Buffer.concat([
    field(1, u32(22)),
    field(14, Buffer.from('/workspace')),
    field(54, Buffer.concat([field(55, u32(1)), field(56, Buffer.from('src/a.ts'))])),
    field(54, Buffer.concat([field(55, u32(4)), field(56, Buffer.alloc(0))])),
  ]);
  assert.deepEqual(sent, [expected]);

  await client.fileEvents('/workspace', []);
  assert.deepEqual(
    sent[1],
    Buffer.concat([field(1, u32(22)), field(14, Buffer.from('/workspace'))]),
    'an empty request arms the module',
  );
});

test('the relay sends a host MODIFY as its kind and share-relative path, nothing else', async () => {
  const share = path.join(dir, 'share');
  fs.mkdirSync(path.join(share, 'src'), { recursive: true });
  const file = path.join(share, 'src', 'a.ts');
  fs.writeFileSync(file, 'one\n');
  const calls: GuestFileEvent[][] = [];
  const agent = {
    fileEvents: (_mount: string, events: readonly GuestFileEvent[]) => {
      calls.push([...events]);
      return Promise.resolve();
    },
  } as unknown as AgentClient;
  const problems: string[] = [];
  const relay = await FileEventRelay.start({ hostPath: share, guestPath: '/workspace', covers: [] }, agent, (p) =>
    problems.push(p.message),
  );
  try {
    assert.deepEqual(calls, [[]], 'the first request is the empty one that arms the module');
    fs.appendFileSync(file, 'two\n');
    const deadline = Date.now() + 10_000;
    while (calls.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(calls.slice(1), [[{ kind: 'MODIFY', path: 'src/a.ts' }]]);
    assert.deepEqual(problems, []);
  } finally {
    await relay.stop();
  }
});
