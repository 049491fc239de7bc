import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { Duplex, PassThrough, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { MicrovmError } from '../errors';
import { assertDigestMatches, createDigestHash, parseDigest } from '../image/digest';
import { LAYER_MEDIA_TYPES, type LayerBlob } from '../image/types';

/**
 * The decompressed tar bytes of one layer blob. The compressed bytes are hashed as they are
 * read; after the last chunk the size and digest are checked, so a consumer that reads to the
 * end only finishes without error when the layer was genuine. Decompressed output beyond
 * `maxBytes` aborts with E_IMAGE_TOO_LARGE.
 */
export async function* layerTarStream(layer: LayerBlob, maxBytes: number): AsyncGenerator<Buffer> {
  const digest = parseDigest(layer.digest, `layer ${layer.path}`);
  const compression = LAYER_MEDIA_TYPES[layer.mediaType];
  if (!compression) {
    throw new MicrovmError('E_IMAGE_UNSUPPORTED', `unsupported layer media type ${layer.mediaType} (${layer.digest})`);
  }
  const hash = createDigestHash(digest);
  let compressedBytes = 0;
  const file = createReadStream(layer.path, { highWaterMark: 256 * 1024 });
  file.on('data', (chunk) => {
    hash.update(chunk as Buffer);
    compressedBytes += chunk.length;
  });
  const { decoder, finished } = openDecoder(compression);
  let streamError: Error | undefined;
  pipeline(file, decoder, (err) => {
    if (err) streamError = err;
  });
  let total = 0;
  try {
    for await (const chunk of decoder as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) {
        throw new MicrovmError(
          'E_IMAGE_TOO_LARGE',
          `layer ${layer.digest} expands to more than ${maxBytes} bytes (the maxLayerBytes cap); ` +
            'it may be a decompression bomb; if the image is genuine, raise maxLayerBytes',
        );
      }
      yield chunk;
    }
    await finished;
    if (streamError) throw streamError;
  } catch (err) {
    if (err instanceof MicrovmError) throw err;
    throw new MicrovmError(
      'E_IMAGE_INVALID',
      `cannot decompress layer ${layer.digest} (${layer.mediaType}): ${(err as Error).message}; the blob is corrupt; re-export the image`,
      { cause: err },
    );
  } finally {
    file.destroy();
    decoder.destroy();
  }
  if (compressedBytes !== layer.size) {
    throw new MicrovmError(
      'E_IMAGE_DIGEST',
      `layer ${layer.path} is ${compressedBytes} bytes, not the ${layer.size} its descriptor declares; re-export the image`,
    );
  }
  assertDigestMatches(digest, hash.digest('hex'), layer.path);
}

/** Node 20's zlib has no zstd, so zstd layers go through the `zstd` binary. */
function openDecoder(compression: 'none' | 'gzip' | 'zstd'): { decoder: Duplex; finished: Promise<void> } {
  if (compression === 'none') return { decoder: new PassThrough(), finished: Promise.resolve() };
  if (compression === 'gzip') return { decoder: createGunzip(), finished: Promise.resolve() };
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString();
  });
  const finished = new Promise<void>((resolve, reject) => {
    child.on('error', (err) =>
      reject(
        new MicrovmError('E_SETUP_MISSING', `cannot run zstd for a zstd layer: ${err.message}; run \`npm run setup\``),
      ),
    );
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`zstd exited with ${code}: ${stderr.trim()}`)),
    );
  });
  finished.catch(() => undefined);
  const decoder = Duplex.from({ writable: child.stdin, readable: child.stdout });
  // Kill zstd only when the consumer stops early; after its output ended it exits by itself,
  // and killing it then would turn a clean exit into a failure.
  let outputEnded = false;
  child.stdout.on('end', () => (outputEnded = true));
  decoder.on('close', () => {
    if (!outputEnded) child.kill('SIGKILL');
  });
  return { decoder, finished };
}
