/** Ports that may get a notice of their own within one window; more at once get a summary. */
export const NOTICES_PER_WINDOW = 3;
/** The window of NOTICES_PER_WINDOW, in milliseconds. */
export const NOTICE_WINDOW_MS = 30_000;

/** How NoticeBudget tells about a batch of forwarded ports. */
export interface NoticeDecision {
  /** Ports that get a notice of their own (a notification, the browser, or the same-port question). */
  each: number[];
  /** Ports told about together, in one summary notice. */
  summary: number[];
  /** Ports that get none: noticed before (a restarted listener), or over the budget (the Ports view lists them). */
  quiet: number[];
}

/**
 * How many notices newly forwarded ports may cause. A port is noticed at most once per
 * session, however often its listener comes and goes; a burst gets one summary instead of a
 * notification per port, and at most one summary per window. Time comes in as `now`.
 */
export class NoticeBudget {
  private readonly noticed = new Set<number>();
  private eachAt: number[] = [];
  private lastSummaryAt = -Infinity;

  constructor(
    private readonly perWindow = NOTICES_PER_WINDOW,
    private readonly windowMs = NOTICE_WINDOW_MS,
  ) {}

  /** Which of these newly forwarded ports get a notice each, which a summary, and which none, at time `now` (ms). */
  admit(ports: readonly number[], now: number): NoticeDecision {
    const fresh = [...new Set(ports)].filter((port) => !this.noticed.has(port));
    const quiet = ports.filter((port) => !fresh.includes(port));
    for (const port of fresh) this.noticed.add(port);
    this.eachAt = this.eachAt.filter((at) => now - at < this.windowMs);
    if (fresh.length <= this.perWindow - this.eachAt.length) {
      this.eachAt.push(...fresh.map(() => now));
      return { each: fresh, summary: [], quiet };
    }
    if (now - this.lastSummaryAt >= this.windowMs) {
      this.lastSummaryAt = now;
      return { each: [], summary: fresh, quiet };
    }
    return { each: [], summary: [], quiet: [...quiet, ...fresh] };
  }
}
