import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicrovmError } from '../../engine/errors';
import { resolveManifest, type DocumentSource } from '../../engine/image/resolve';
import type { Descriptor } from '../../engine/image/schemas';
import { DEFAULT_TAR_LIMITS, readTar, TarFormatError, type TarLimits } from '../../engine/tar/reader';
import { BLOCK_SIZE } from '../../engine/tar/types';
import { blobOf, describe, gzipLayer, imageOf, indexOf, tarOf, type Blob } from '../helpers/image-fixtures';

/**
 * T25: the host-side decoders of registry and archive input take random and mutated inputs
 * without crashing or hanging, and every rejection is a typed error: MicrovmError for the
 * index -> manifest -> config walk, TarFormatError for layer tar streams. T17: the tar
 * reader's entry-count, PAX and path caps hold.
 */
const ITERATIONS = 10_000;

/** A small seeded generator (the same inputs on every run, so a failure reproduces). */
function generator(seed: number) {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return {
    next,
    int: (max: number) => Math.floor(next() * max),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}
type Random = ReturnType<typeof generator>;

// ---------------------------------------------------------------------------------------
// The index -> manifest -> config walk (registry pulls, OCI layouts and archives share it).

const layer = gzipLayer(tarOf([{ path: 'etc/hello', data: 'hi\n' }]));
const image = imageOf([layer], { Env: ['PATH=/bin'], Cmd: ['sh'], User: '1000:1000', WorkingDir: '/w' });
const index = indexOf([{ manifest: image.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);

/** Values a hostile document might put anywhere. */
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 53,
  'x'.repeat(10_000),
  '',
  'sha256:../../etc/x',
  'SHA256:' + 'A'.repeat(64),
  [],
  [null],
  {},
  { manifests: [], layers: [] },
  JSON.parse('{"__proto__": {"polluted": true}}'),
  '\u0000',
  '\ud800',
];

/** One structural change somewhere in a parsed JSON value: a replaced, removed or duplicated member. */
function mutateValue(value: unknown, random: Random, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object')
    return random.next() < 0.5 ? random.pick(ODD_VALUES) : value;
  if (Array.isArray(value)) {
    const copy = [...value];
    const choice = random.int(4);
    if (choice === 0 || copy.length === 0) copy.push(random.pick(ODD_VALUES));
    else if (choice === 1) copy.splice(random.int(copy.length), 1);
    else if (choice === 2) copy.push(...Array.from({ length: 50 }, () => copy[0]));
    else {
      const i = random.int(copy.length);
      copy[i] = mutateValue(copy[i], random, depth + 1);
    }
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const choice = random.int(4);
  if (choice === 0 || keys.length === 0)
    copy[random.pick(['manifests', 'layers', 'mediaType', 'config', 'schemaVersion', 'extra'])] =
      random.pick(ODD_VALUES);
  else if (choice === 1) delete copy[random.pick(keys)];
  else {
    const key = random.pick(keys);
    copy[key] = mutateValue(copy[key], random, depth + 1);
  }
  return copy;
}

/** Raw byte damage: flips, a truncation, or bytes spliced in. */
function mutateBytes(bytes: Buffer, random: Random): Buffer {
  const copy = Buffer.from(bytes);
  const choice = random.int(3);
  if (choice === 0) {
    for (let i = 0; i < 1 + random.int(4); i++) copy[random.int(copy.length)] = random.int(256);
    return copy;
  }
  if (choice === 1) return copy.subarray(0, random.int(copy.length));
  const at = random.int(copy.length);
  return Buffer.concat([
    copy.subarray(0, at),
    Buffer.from(random.pick(['{', '}', '[', '"', ',', ':', '\\', '\u00ff', '1e999'])),
    copy.subarray(at),
  ]);
}

function mutateDocument(blob: Blob, random: Random): Buffer {
  if (random.next() < 0.5) return mutateBytes(blob.data, random);
  return Buffer.from(JSON.stringify(mutateValue(JSON.parse(blob.data.toString()), random)));
}

/** Documents by digest, as a content store would serve them after verifying their bytes. */
function sourceOf(documents: Map<string, Buffer>): DocumentSource {
  return {
    document: async (descriptor: Descriptor) => {
      const bytes = documents.get(descriptor.digest);
      if (!bytes) throw new MicrovmError('E_IMAGE_INVALID', `no blob ${descriptor.digest}`);
      return bytes;
    },
    describe: (descriptor: Descriptor) => descriptor.digest,
  };
}

test('the valid index -> manifest -> config walk resolves (the fuzz baseline)', async () => {
  const documents = new Map([
    [index.digest, index.data],
    [image.manifest.digest, image.manifest.data],
    [image.config.digest, image.config.data],
  ]);
  const resolved = await resolveManifest(sourceOf(documents), describe(index));
  assert.equal(resolved.manifest.digest, image.manifest.digest);
  assert.deepEqual(
    resolved.layers.map((l) => l.digest),
    [layer.digest],
  );
});

test('10,000 random and mutated index, manifest and config documents: resolved or refused with a MicrovmError, never a crash', async () => {
  const random = generator(20261129);
  const outcomes = new Map<string, number>();
  const started = Date.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const documents = new Map([
      [index.digest, index.data],
      [image.manifest.digest, image.manifest.data],
      [image.config.digest, image.config.data],
    ]);
    const target = random.pick([index, image.manifest, image.config]);
    documents.set(
      target.digest,
      random.next() < 0.05
        ? Buffer.from(Array.from({ length: random.int(256) }, () => random.int(256)))
        : mutateDocument(target, random),
    );
    const top =
      random.next() < 0.2
        ? describe(blobOf(Buffer.alloc(0), random.pick(['application/json', image.manifest.mediaType])))
        : describe(index);
    if (top.mediaType === image.manifest.mediaType) top.digest = image.manifest.digest;
    try {
      await resolveManifest(sourceOf(documents), top);
      outcomes.set('resolved', (outcomes.get('resolved') ?? 0) + 1);
    } catch (err) {
      assert.ok(err instanceof MicrovmError, `input ${i} threw a non-engine error: ${(err as Error).stack}`);
      assert.ok(
        err.message.length < 2000,
        `input ${i}: the message stays short (${err.message.length} chars): ${err.message.slice(0, 300)}`,
      );
      outcomes.set(err.code, (outcomes.get(err.code) ?? 0) + 1);
    }
  }
  console.log(`${ITERATIONS} documents in ${Date.now() - started} ms: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.ok(
    (outcomes.get('resolved') ?? 0) > 0 && (outcomes.get('E_IMAGE_INVALID') ?? 0) > 0,
    'the mutations reach both outcomes',
  );
});

// ---------------------------------------------------------------------------------------
// Layer tar streams.

const sampleTar = tarOf([
  { path: 'etc/', type: 'dir', mode: 0o755 },
  { path: 'etc/hello', data: 'hello\n', mode: 0o644 },
  { path: `long/${'d'.repeat(120)}/file`, data: 'x'.repeat(700) },
  { path: 'bin/sh', type: 'symlink', linkpath: '/bin/busybox' },
  { path: 'usr/bin/cap', data: 'c', xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2])]]) },
  { path: 'etc/hard', type: 'hardlink', linkpath: 'etc/hello' },
  { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
]);

/** Recomputes a header block's checksum, so that a mutation gets past it into the fields. */
function fixChecksum(tar: Buffer, blockStart: number): void {
  const block = tar.subarray(blockStart, blockStart + BLOCK_SIZE);
  block.fill(0x20, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

function mutateTar(random: Random): Buffer {
  const tar = Buffer.from(sampleTar);
  const blocks = tar.length / BLOCK_SIZE;
  for (let n = 0; n < 1 + random.int(6); n++) {
    const block = random.int(blocks);
    // Header fields are where parsing happens: aim most flips at the first 512 bytes of a block.
    const offset = block * BLOCK_SIZE + (random.next() < 0.8 ? random.int(345) : random.int(BLOCK_SIZE));
    tar[offset] = random.pick([0, 0x20, 0x30, 0x37, 0x38, 0x80, 0xff, 0x0a, 0x3d, random.int(256)]);
    if (random.next() < 0.7) fixChecksum(tar, block * BLOCK_SIZE);
  }
  return random.next() < 0.2 ? tar.subarray(0, random.int(tar.length)) : tar;
}

async function* chunked(bytes: Buffer, random: Random): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length;) {
    const size = 1 + random.int(2048);
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

/** Reads every entry and its whole body, as the merge planner does. */
async function consume(bytes: Buffer, random: Random, limits: TarLimits = DEFAULT_TAR_LIMITS): Promise<number> {
  let entries = 0;
  for await (const entry of readTar(chunked(bytes, random), limits)) {
    for await (const chunk of entry.body()) assert.ok(chunk.length <= bytes.length);
    entries++;
  }
  return entries;
}

test('10,000 random and mutated tar streams: read or refused with a TarFormatError, never a crash or a hang', async () => {
  const random = generator(4242);
  assert.equal(await consume(sampleTar, random), 7, 'the unmutated sample reads');
  const outcomes = { read: 0, refused: 0 };
  const started = Date.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const input =
      random.next() < 0.05
        ? Buffer.from(Array.from({ length: random.int(3 * BLOCK_SIZE) }, () => random.int(256)))
        : mutateTar(random);
    try {
      await consume(input, random);
      outcomes.read++;
    } catch (err) {
      assert.ok(err instanceof TarFormatError, `input ${i} threw ${(err as Error).stack}`);
      outcomes.refused++;
    }
  }
  console.log(`${ITERATIONS} tar streams in ${Date.now() - started} ms: ${JSON.stringify(outcomes)}`);
  assert.ok(outcomes.read > 0 && outcomes.refused > 0, 'the mutations reach both outcomes');
});

test('T17: the entry-count, PAX header and path caps stop a hostile tar early', async () => {
  const random = generator(7);
  const limits: TarLimits = { maxEntries: 100, maxPaxHeaderBytes: 4096, maxPathBytes: 256 };
  const many = tarOf(Array.from({ length: 101 }, (_, i) => ({ path: `f${i}` })));
  await assert.rejects(
    consume(many, random, limits),
    (err: Error) => err instanceof TarFormatError && /more than 100 entries/.test(err.message),
  );
  assert.equal(await consume(tarOf(Array.from({ length: 100 }, (_, i) => ({ path: `f${i}` }))), random, limits), 100);

  const bigPax = tarOf([{ path: 'x', xattrs: new Map([['user.big', Buffer.alloc(5000, 1)]]) }]);
  await assert.rejects(
    consume(bigPax, random, limits),
    (err: Error) =>
      err instanceof TarFormatError && /extension header of \d+ bytes exceeds the 4096-byte cap/.test(err.message),
  );

  const longPath = tarOf([{ path: `${'a/'.repeat(200)}x` }]);
  await assert.rejects(
    consume(longPath, random, limits),
    (err: Error) => err instanceof TarFormatError && /exceeds the 256-byte cap/.test(err.message),
  );

  // A size field claiming far more than the stream holds ends at the stream's end, not in a huge allocation.
  const lying = Buffer.from(tarOf([{ path: 'x', data: 'abc' }]));
  lying.write('777777777777', 124, 'latin1');
  fixChecksum(lying, 0);
  await assert.rejects(
    consume(lying, random),
    (err: Error) => err instanceof TarFormatError && /ends inside the content/.test(err.message),
  );
});
