/** The stream ended in the middle of something a reader needed whole. */
export class StreamEndedError extends Error {}

/** Pulls exact byte counts out of an async stream of chunks, keeping at most one chunk buffered. */
export class ByteSource {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or null when the stream ended before any of them; throws on a short read. */
  async readExact(n: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const chunk = await this.next(n - have);
      if (!chunk) {
        if (have === 0) return null;
        throw new StreamEndedError(`unexpected end of stream (${have} of ${n} bytes)`);
      }
      parts.push(chunk);
      have += chunk.length;
    }
    return parts.length === 1 && parts[0] ? parts[0] : Buffer.concat(parts, n);
  }

  /** Up to `max` bytes, whatever is available next; null at the end of the stream. */
  async next(max: number): Promise<Buffer | null> {
    while (this.pending.length === 0) {
      if (this.ended) return null;
      const result = await this.iterator.next();
      if (result.done) {
        this.ended = true;
        return null;
      }
      this.pending = result.value;
    }
    const out = this.pending.subarray(0, max);
    this.pending = this.pending.subarray(out.length);
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      const chunk = await this.next(left);
      if (!chunk) throw new StreamEndedError(`unexpected end of stream while skipping ${left} bytes`);
      left -= chunk.length;
    }
  }

  /** Reads to the end, discarding everything (so a verifying source gets to check its digest). */
  async drain(): Promise<void> {
    while (await this.next(Number.MAX_SAFE_INTEGER)) {
      /* discard */
    }
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}
