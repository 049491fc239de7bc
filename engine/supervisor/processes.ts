import type { ExecChild } from '../agent/exec-child';
import { MicrovmError } from '../errors';
import type { ProcessInfo, SpawnParams } from './protocol';
import { RingBuffer } from './ring-buffer';

/** How much recent output of a pty a late client is shown. */
export const PTY_REPLAY_BYTES = 256 * 1024;

/** Where a process's output goes: one attached client. */
export interface ProcessSink {
  output(id: number, stream: 'stdout' | 'stderr', data: Buffer): void;
  exit(id: number, exitCode: number, signal?: string): void;
  /** Resolves once the client has room again (or is gone): an exec process waits for its only reader. */
  drained(): Promise<void>;
}

interface SupervisedProcess {
  id: number;
  child: ExecChild;
  params: SpawnParams;
  ring: RingBuffer | undefined;
  attached: Set<ProcessSink>;
  owner: ProcessSink;
}

/**
 * The guest processes a supervisor holds. A pty keeps its recent output in a ring buffer and
 * is read continuously, whoever is attached, so a slow or absent client never stalls it; a
 * client that falls too far behind is dropped by its link, not waited for. An exec process
 * (not persistent) has one reader, its owner: its output waits for that reader (only that
 * stream stalls, by the agent's per-stream credit), and it is killed when the owner leaves.
 */
export class ProcessTable {
  private nextId = 1;
  private readonly processes = new Map<number, SupervisedProcess>();

  constructor(private readonly log: (line: string) => void) {}

  add(child: ExecChild, params: SpawnParams, owner: ProcessSink): number {
    const id = this.nextId++;
    const proc: SupervisedProcess = {
      id,
      child,
      params,
      ring: params.tty ? new RingBuffer(PTY_REPLAY_BYTES) : undefined,
      attached: new Set([owner]),
      owner,
    };
    this.processes.set(id, proc);
    void this.pump(proc);
    return id;
  }

  list(): ProcessInfo[] {
    return [...this.processes.values()].map((p) => ({
      id: p.id,
      argv: p.params.argv,
      tty: p.params.tty,
      persistent: p.params.persistent,
      name: p.params.name ?? p.params.argv[0] ?? 'shell',
      attached: p.attached.size,
      bufferedBytes: p.ring?.length ?? 0,
    }));
  }

  /** Attaches `sink`: the replay (the ring's contents) now, live output after, with nothing lost or repeated between them. */
  attach(id: number, sink: ProcessSink): { replay: Buffer; dropped: number } {
    const proc = this.get(id);
    proc.attached.add(sink);
    return { replay: proc.ring?.contents() ?? Buffer.alloc(0), dropped: proc.ring?.dropped ?? 0 };
  }

  detach(id: number, sink: ProcessSink): void {
    this.get(id).attached.delete(sink);
  }

  get(id: number): SupervisedProcess {
    const proc = this.processes.get(id);
    if (!proc)
      throw new MicrovmError(
        'E_NO_PROCESS',
        `the workspace VM has no process ${id} (it ended, or was never started); list them with proc/list`,
      );
    return proc;
  }

  /** A client left: it is detached everywhere, and the processes that were only its own are killed. */
  dropClient(sink: ProcessSink): void {
    for (const proc of this.processes.values()) {
      proc.attached.delete(sink);
      if (proc.owner === sink && !proc.params.persistent) proc.child.signal(proc.params.tty ? 'SIGHUP' : 'SIGKILL');
    }
  }

  get size(): number {
    return this.processes.size;
  }

  private async pump(proc: SupervisedProcess): Promise<void> {
    const stream = async (read: () => Promise<Buffer>, name: 'stdout' | 'stderr') => {
      for (let chunk = await read(); chunk.length > 0; chunk = await read()) {
        proc.ring?.push(chunk);
        for (const sink of proc.attached) sink.output(proc.id, name, chunk);
        if (!proc.params.persistent) await proc.owner.drained();
      }
    };
    try {
      await Promise.all([
        stream(() => proc.child.readStdout(), 'stdout'),
        proc.params.tty ? undefined : stream(() => proc.child.readStderr(), 'stderr'),
      ]);
      const result = await proc.child.wait();
      for (const sink of proc.attached) sink.exit(proc.id, result.exitCode, result.signal ?? undefined);
    } catch (err) {
      this.log(
        `process ${proc.id} (${proc.params.argv.join(' ') || 'shell'}) ended with an error: ${(err as Error).message}`,
      );
      for (const sink of proc.attached) sink.exit(proc.id, -1);
    } finally {
      this.processes.delete(proc.id);
    }
  }
}
