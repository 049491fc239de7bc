import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeListeners } from '../../engine/agent/port-watch';
import { Tag } from '../../engine/agent/protocol';
import { TlvWriter } from '../../engine/agent/tlv';

function listener(port: number, command = 'node', address = '0.0.0.0'): TlvWriter {
  return new TlvWriter()
    .u32(Tag.PORT, port)
    .str(Tag.ADDR, address)
    .u32(Tag.FAMILY, 4)
    .u32(Tag.PID, 7)
    .str(Tag.COMM, command);
}

function payload(...items: TlvWriter[]): Buffer {
  const list = new TlvWriter();
  for (const item of items) list.nested(Tag.LISTENER, item);
  return list.toBuffer();
}

test('a listener on a port TCP cannot have is dropped, the others are kept (a fake agent cannot stop the forwarding)', () => {
  const ports = decodeListeners(
    payload(listener(0), listener(3000), listener(65536), listener(0xffffffff), listener(65535)),
  );
  assert.deepEqual(
    ports.map((p) => p.port),
    [3000, 65535],
  );
});

test("a listener's process name and address from the guest are cut to a bounded length", () => {
  const [only] = decodeListeners(payload(listener(8080, 'x'.repeat(100_000), '1'.repeat(10_000))));
  assert.equal(only?.command.length, 256);
  assert.equal(only?.address.length, 64);
});
