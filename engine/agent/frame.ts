import { FRAME_MAGIC, HEADER_SIZE, MAX_PAYLOAD } from './protocol';

export interface Frame {
  type: number;
  stream: number;
  payload: Buffer;
}

export function encodeFrame(type: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PAYLOAD) {
    throw new RangeError(`frame payload of ${payload.length} bytes exceeds MAX_PAYLOAD (${MAX_PAYLOAD})`);
  }
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame.writeUInt16LE(FRAME_MAGIC, 0);
  frame.writeUInt8(type, 2);
  frame.writeUInt8(0, 3);
  frame.writeUInt32LE(stream, 4);
  frame.writeUInt32LE(payload.length, 8);
  payload.copy(frame, HEADER_SIZE);
  return frame;
}

export class FrameError extends Error {}

function headerProblem(header: Buffer): string | undefined {
  const magic = header.readUInt16LE(0);
  const flags = header.readUInt8(3);
  const length = header.readUInt32LE(8);
  if (magic !== FRAME_MAGIC) return `bad frame magic 0x${magic.toString(16)}`;
  if (flags !== 0) return `non-zero frame flags 0x${flags.toString(16)}`;
  if (length > MAX_PAYLOAD) return `frame length ${length} exceeds MAX_PAYLOAD (${MAX_PAYLOAD})`;
  return undefined;
}

/**
 * Incremental decoder for bytes from the guest. The guest is hostile: a header is checked
 * before its length is trusted, and the decoder never holds more than one frame's worth of
 * bytes plus the current chunk. After a FrameError the stream is unusable.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;

  /**
   * Feeds bytes; returns every complete frame, in order. Throws FrameError on a bad header,
   * unless `resync`: then bytes are dropped up to the next frame magic. That is only for the
   * start of a connection to a VM restored from a snapshot, whose first bytes may be the tail
   * of a frame that was in flight when the snapshot was taken.
   */
  push(data: Buffer, resync = false): Frame[] {
    if (this.failed) throw new FrameError('decoder already failed');
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buffered < HEADER_SIZE) break;
      const header = this.peek(HEADER_SIZE);
      const problem = headerProblem(header);
      if (problem && resync) {
        this.skipToMagic();
        continue;
      }
      if (problem) this.fail(problem);
      const length = header.readUInt32LE(8);
      if (this.buffered < HEADER_SIZE + length) break;
      const whole = this.take(HEADER_SIZE + length);
      frames.push({
        type: whole.readUInt8(2),
        stream: whole.readUInt32LE(4),
        payload: whole.subarray(HEADER_SIZE),
      });
    }
    return frames;
  }

  /** Drops the first byte, and the ones after it up to the next that may begin a frame. */
  private skipToMagic(): void {
    const all = this.take(this.buffered);
    const next = all.indexOf(FRAME_MAGIC & 0xff, 1);
    const rest = next < 0 ? Buffer.alloc(0) : all.subarray(next);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
  }

  private fail(message: string): never {
    this.failed = true;
    this.chunks = [];
    this.buffered = 0;
    throw new FrameError(message);
  }

  private peek(n: number): Buffer {
    return this.front(n).subarray(0, n);
  }

  private take(n: number): Buffer {
    const head = this.front(n);
    const out = head.subarray(0, n);
    if (head.length === n) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
    this.buffered -= n;
    return out;
  }

  /** The first chunk, merged with the rest when it holds fewer than n bytes (callers check `buffered` first). */
  private front(n: number): Buffer {
    const head = this.chunks[0];
    if (head && head.length >= n) return head;
    const merged = Buffer.concat(this.chunks);
    this.chunks = [merged];
    return merged;
  }
}
