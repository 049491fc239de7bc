import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameDecoder, FrameError } from '../../engine/agent/frame';
import { FrameType, HEADER_SIZE, MAX_PAYLOAD } from '../../engine/agent/protocol';
import { parseTlv, TlvError, TlvWriter } from '../../engine/agent/tlv';

test('frames round-trip when split at every byte boundary', () => {
  const payload = Buffer.from('hello, guest');
  const wire = Buffer.concat([encodeFrame(FrameType.STDOUT, 7, payload), encodeFrame(FrameType.RESPONSE, 7)]);
  for (let cut = 0; cut <= wire.length; cut++) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(wire.subarray(0, cut)), ...decoder.push(wire.subarray(cut))];
    assert.equal(frames.length, 2);
    assert.deepEqual(frames[0], { type: FrameType.STDOUT, stream: 7, payload });
    assert.equal(frames[1]?.payload.length, 0);
  }
});

test('a bad magic, non-zero flags or an oversized length is refused before any payload is buffered', () => {
  const good = encodeFrame(FrameType.HELLO, 0, Buffer.alloc(4));
  const badMagic = Buffer.from(good);
  badMagic.writeUInt16LE(0x1234, 0);
  const badFlags = Buffer.from(good);
  badFlags.writeUInt8(1, 3);
  const huge = Buffer.from(good.subarray(0, HEADER_SIZE));
  huge.writeUInt32LE(MAX_PAYLOAD + 1, 8);
  for (const [wire, message] of [
    [badMagic, /magic/],
    [badFlags, /flags/],
    [huge, /exceeds MAX_PAYLOAD/],
  ] as const) {
    assert.throws(
      () => new FrameDecoder().push(wire),
      (err: Error) => err instanceof FrameError && message.test(err.message),
    );
  }
});

test('resync (the start of a restored connection): the tail of a frame in flight at the snapshot is skipped', () => {
  const hello = encodeFrame(FrameType.HELLO, 0, new TlvWriter().u64(30, 7n).toBuffer());
  const stale = encodeFrame(FrameType.STDOUT, 1, Buffer.alloc(3000));
  const tail = stale.subarray(1000); // zeros of a STDOUT payload, then the next whole frame
  const wire = Buffer.concat([tail, Buffer.from('xMMV'), stale, hello]);
  for (const cut of [0, 1, 1500, 2001, wire.length - 5]) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(wire.subarray(0, cut), true), ...decoder.push(wire.subarray(cut), true)];
    assert.deepEqual(
      frames.map((f) => [f.type, f.stream, f.payload.length]),
      [
        [FrameType.STDOUT, 1, 3000],
        [FrameType.HELLO, 0, hello.length - HEADER_SIZE],
      ],
      `cut at ${cut}`,
    );
  }
  assert.throws(() => new FrameDecoder().push(wire), /magic/, 'without resync the same bytes are a protocol error');
});

test('10,000 random and mutated inputs never crash the decoder or the TLV parser', () => {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const valid = encodeFrame(FrameType.RESPONSE, 3, new TlvWriter().u32(20, 0).str(21, 'ok').toBuffer());
  for (let i = 0; i < 10_000; i++) {
    const input = Buffer.from(i % 2 ? valid : Buffer.alloc(Math.floor(random() * 64)));
    for (let flips = 0; flips < 3; flips++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    try {
      for (const frame of new FrameDecoder().push(input)) parseTlv(frame.payload);
    } catch (err) {
      assert.ok(err instanceof FrameError || err instanceof TlvError, `unexpected ${(err as Error).stack}`);
    }
  }
});

test('TLV fields round-trip, and malformed fields are refused', () => {
  const inner = new TlvWriter().str(2, 'echo');
  const body = new TlvWriter()
    .u32(1, 1)
    .str(2, 'sh')
    .str(2, 'ünïcode')
    .u64(30, 2n ** 63n)
    .nested(12, inner)
    .toBuffer();
  const fields = parseTlv(body);
  assert.equal(fields.u32(1), 1);
  assert.deepEqual(fields.strs(2), ['sh', 'ünïcode']);
  assert.equal(fields.u64(30), 2n ** 63n);
  assert.deepEqual(parseTlv(fields.bytes(12) as Buffer).strs(2), ['echo']);
  assert.throws(() => parseTlv(body.subarray(0, body.length - 1)), TlvError);
  const wrongWidth = Buffer.alloc(8);
  wrongWidth.writeUInt16LE(1, 0);
  wrongWidth.writeUInt32LE(2, 2);
  assert.throws(() => parseTlv(wrongWidth), /expected 4/);
  assert.throws(() => new TlvWriter().str(2, 'a\0b'), /NUL/);
});
