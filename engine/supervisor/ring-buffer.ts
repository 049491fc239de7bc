/**
 * The most recent output of a pty, at most `capacity` bytes: what a client that attaches
 * later is shown first. Older bytes are dropped whole chunks at a time, then cut at the front.
 */
export class RingBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes dropped since the start, so a client can tell the replay is not the whole output. */
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new Error(`ring buffer capacity must be positive, got ${capacity}`);
  }

  /** Appends bytes, dropping the oldest beyond the capacity. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const kept = chunk.length > this.capacity ? chunk.subarray(chunk.length - this.capacity) : chunk;
    this.dropped += chunk.length - kept.length;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
    for (let first = this.chunks[0]; first && this.size > this.capacity; first = this.chunks[0]) {
      const excess = this.size - this.capacity;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
        this.dropped += excess;
      }
    }
  }

  /** How many bytes are kept. */
  get length(): number {
    return this.size;
  }

  /** The bytes kept, oldest first. */
  contents(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}
