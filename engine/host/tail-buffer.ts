/** Keeps the last `capacity` bytes written: a flooding guest costs bounded host memory. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;

  constructor(private readonly capacity: number) {}

  write(data: Buffer): void {
    this.chunks.push(data);
    this.size += data.length;
    for (let first = this.chunks[0]; first && this.size - first.length >= this.capacity; first = this.chunks[0]) {
      this.chunks.shift();
      this.size -= first.length;
      this.dropped += first.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.capacity)).toString('utf8');
  }

  /** The last `n` non-empty lines, for error messages. */
  lastLines(n: number): string {
    return this.text()
      .split(/\r?\n/)
      .filter((line) => line.trim() !== '')
      .slice(-n)
      .join('\n');
  }
}
