/**
 * The last events of a supervisor, bounded by count and by an estimate of their size, for a
 * client that attaches later (a reloaded window sees the boot and hook log it missed).
 */
export class Backlog<T> {
  private items: Array<{ item: T; bytes: number }> = [];
  private bytes = 0;

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
    private readonly sizeOf: (item: T) => number,
  ) {}

  /** Appends an item, dropping the oldest beyond the bounds (the newest is always kept). */
  push(item: T): void {
    const bytes = this.sizeOf(item);
    this.items.push({ item, bytes });
    this.bytes += bytes;
    while (this.items.length > this.maxItems || (this.bytes > this.maxBytes && this.items.length > 1)) {
      this.bytes -= (this.items.shift() as { bytes: number }).bytes;
    }
  }

  /** The items kept, oldest first. */
  list(): T[] {
    return this.items.map((entry) => entry.item);
  }
}
