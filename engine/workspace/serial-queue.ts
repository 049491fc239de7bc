/**
 * Tasks that run one at a time, in the order they were queued. A failed task does not stop
 * the ones after it; after close(), new tasks are refused without running.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** Runs `task` after every task queued before it; rejects once the queue is closed. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(() => {
      if (this.closed) throw new Error('the MicroVM is not running');
      return task();
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every task queued so far has finished. */
  async idle(): Promise<void> {
    await this.tail;
  }

  /** Refuses tasks queued from now on. */
  close(): void {
    this.closed = true;
  }
}

/**
 * A request function for `task` on `queue`: at most one run waits at a time, and requests
 * that arrive while it waits are folded into it (a burst of changes is handled once, with the
 * latest state). A run that is already going gets one more run after it.
 */
export function coalesced(queue: SerialQueue, task: () => Promise<void>, onError: (err: Error) => void): () => void {
  let waiting = false;
  return () => {
    if (waiting) return;
    waiting = true;
    queue
      .run(async () => {
        waiting = false;
        await task();
      })
      .catch(onError);
  };
}
