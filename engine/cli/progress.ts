import type { BuildProgress } from '../api/image';
import { plainLine } from './terminal-text';

/**
 * Progress lines on stderr for work that takes more than a second. Quick steps print
 * nothing, so scripted use stays quiet.
 */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private shown = false;
  private started = 0;
  private label = '';

  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  step(label: string): void {
    this.finish();
    this.label = label;
    this.started = Date.now();
    this.shown = false;
    this.timer = setTimeout(() => {
      this.shown = true;
      this.out.write(`microvm: ${plainLine(label)}...\n`);
    }, 1000);
    this.timer.unref();
  }

  /** Updates the current step's detail if its line is already shown. */
  detail(text: string): void {
    if (this.shown) this.out.write(`microvm:   ${plainLine(text)}\n`);
  }

  finish(): void {
    clearTimeout(this.timer);
    if (this.shown)
      this.out.write(`microvm: ${this.label}: done in ${((Date.now() - this.started) / 1000).toFixed(1)} s\n`);
    this.shown = false;
    this.timer = undefined;
  }

  /** A line that may quote the guest or the repository: control characters are escaped (line breaks kept). */
  note(text: string): void {
    this.out.write(`microvm: ${text.split('\n').map(plainLine).join('\n')}\n`);
  }
}

/** Build events always shown, quick or not: what a killed process left and was removed, what is rebuilt and why. */
export function buildNotice(event: BuildProgress): string | undefined {
  if (event.phase === 'cleanup') return `removed what a killed process left: ${event.removed.join(', ')}`;
  if (event.phase === 'rebuild') return `rebuilding the root disk: ${event.reason}`;
  return undefined;
}
