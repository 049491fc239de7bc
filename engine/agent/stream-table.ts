import { MAX_EXEC_STREAMS, MAX_FORWARD_STREAMS, MAX_WATCH_STREAMS } from './protocol';

/**
 * What a stream carries, which decides its share of the agent's stream table
 * (native/agent/streams.c). Control calls (ping, info, files, RESTORED, mounts, ...) are
 * answered by the agent at once and hold no slot there, so nothing can make them wait.
 */
export type StreamKind = 'control' | 'exec' | 'forward' | 'watch';

/** Streams of each kind open at once; the agent refuses more with E_BUSY. */
export const STREAM_LIMITS: Readonly<Record<StreamKind, number>> = {
  control: Infinity,
  exec: MAX_EXEC_STREAMS,
  forward: MAX_FORWARD_STREAMS,
  watch: MAX_WATCH_STREAMS,
};

/**
 * A host connection past MAX_FORWARD_STREAMS waits this long for a forwarded connection to end
 * (a burst of short requests all get through), and at most this many wait; past either it is
 * refused. Held connections (keep-alive pools, websockets) thus cost a VM nothing but refusals.
 */
export const FORWARD_QUEUE = { waitMs: 10_000, max: 256 } as const;

/** Stream ids are positive 31-bit numbers; after the last one, numbering goes on from 1. */
export const MAX_STREAM_ID = 0x7fffffff;

/**
 * The host's view of one connection's streams: ids and the count per kind.
 *
 * Numbering rule: ids start above the floor the agent names in its HELLO answer, the highest
 * id it still holds for an earlier host (a VM restored from a snapshot keeps the streams of the
 * host that saved it until RESTORED ends them). Frames the agent still sends on those ids are
 * then for no stream of ours and are dropped, never taken for a new stream's.
 */
export class StreamTable {
  private nextId = 1;
  private readonly kinds = new Map<number, StreamKind>();
  private readonly counts: Record<StreamKind, number> = { control: 0, exec: 0, forward: 0, watch: 0 };

  /** Sets the floor from the HELLO answer; only before any stream is open. Throws on an id out of range. */
  startAbove(floor: number): void {
    if (!Number.isInteger(floor) || floor < 0 || floor > MAX_STREAM_ID) {
      throw new RangeError(`stream floor ${floor} is not a stream id (0 to ${MAX_STREAM_ID})`);
    }
    if (this.kinds.size > 0) throw new Error('the stream floor must be set before the first stream opens');
    this.nextId = floor >= MAX_STREAM_ID ? 1 : floor + 1;
  }

  hasRoom(kind: StreamKind): boolean {
    return this.counts[kind] < STREAM_LIMITS[kind];
  }

  /** Takes an id for a new stream of `kind`, or undefined when that kind's share is used up. */
  open(kind: StreamKind): number | undefined {
    if (!this.hasRoom(kind)) return undefined;
    let id = this.nextId;
    while (this.kinds.has(id)) id = following(id);
    this.nextId = following(id);
    this.kinds.set(id, kind);
    this.counts[kind]++;
    return id;
  }

  /** Frees `id`; returns its kind, or undefined when it was not open. */
  close(id: number): StreamKind | undefined {
    const kind = this.kinds.get(id);
    if (kind === undefined) return undefined;
    this.kinds.delete(id);
    this.counts[kind]--;
    return kind;
  }

  count(kind: StreamKind): number {
    return this.counts[kind];
  }
}

function following(id: number): number {
  return id >= MAX_STREAM_ID ? 1 : id + 1;
}
