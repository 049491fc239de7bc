/** A summary of host connections a forward refused: one notice stands for a whole burst. */
export interface ForwardRefusal {
  /** Connections refused since the previous notice. */
  refused: number;
  /** One line for a log: what was refused, why, and what to do. */
  message: string;
}

/** A flood of refused connections makes one notice per interval, not one per connection. */
export const REFUSAL_NOTICE_INTERVAL_MS = 10_000;

/**
 * Counts refusals and tells listeners at most once per interval: the first refusal at once,
 * the ones after it in a single notice when the interval is over.
 */
export class RefusalNotices {
  private readonly listeners = new Set<(notice: ForwardRefusal) => void>();
  private pending = 0;
  private lastNotice = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly describe: (refused: number) => string,
    private readonly intervalMs = REFUSAL_NOTICE_INTERVAL_MS,
  ) {}

  on(listener: (notice: ForwardRefusal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  record(): void {
    this.pending++;
    const wait = this.lastNotice + this.intervalMs - Date.now();
    if (wait <= 0) return this.flush();
    this.timer ??= setTimeout(() => this.flush(), wait).unref();
  }

  /** Sends what is pending now (the forward is stopping) and stops the timer. */
  close(): void {
    this.flush();
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === 0) return;
    const notice = { refused: this.pending, message: this.describe(this.pending) };
    this.pending = 0;
    this.lastNotice = Date.now();
    for (const listener of this.listeners) listener(notice);
  }
}
