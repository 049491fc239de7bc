import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestProcess, GuestTerminal } from '../../extension/terminal/guest-terminal';

/** A guest process that replays output chunks and records what the terminal sent it. */
class FakeProcess implements GuestProcess {
  readonly stdin: string[] = [];
  readonly sizes: Array<[number, number]> = [];
  readonly signals: string[] = [];
  private chunks: Buffer[];
  private ended: boolean;
  private wake: () => void = () => undefined;
  /** With `open`, output ends only when the process gets SIGHUP. */
  constructor(
    chunks: Buffer[],
    private readonly result = { exitCode: 3, signal: null as string | null },
    open = false,
  ) {
    this.chunks = [...chunks];
    this.ended = !open;
  }
  async writeStdin(data: string): Promise<void> {
    this.stdin.push(data);
  }
  async readStdout(): Promise<Buffer> {
    while (this.chunks.length === 0 && !this.ended)
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    return this.chunks.shift() ?? Buffer.alloc(0);
  }
  resize(rows: number, cols: number): void {
    this.sizes.push([rows, cols]);
  }
  signal(signal: string): void {
    this.signals.push(signal);
    this.ended = true;
    this.wake();
  }
  async wait() {
    return this.result;
  }
}

function harness(process: FakeProcess) {
  const out: string[] = [];
  const closed: Array<number | undefined> = [];
  let started: { rows: number; cols: number } | undefined;
  const terminal = new GuestTerminal(
    async (size) => {
      started = size;
      return process;
    },
    { write: (t) => out.push(t), close: (c) => closed.push(c) },
  );
  return { terminal, out, closed, started: () => started };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('UTF-8 split across chunks renders whole, and the exit code is shown', async () => {
  const euro = Buffer.from('€ ok\r\n');
  const proc = new FakeProcess([euro.subarray(0, 1), euro.subarray(1, 2), euro.subarray(2)]);
  const h = harness(proc);
  h.terminal.open({ rows: 30, cols: 100 });
  for (let i = 0; i < 5; i++) await settle();
  assert.equal(
    h.out.join(''),
    '€ ok\r\n' + '\r\n\x1b[2m[process exited with code 3; press any key to close]\x1b[0m\r\n',
  );
  assert.ok(!h.out.some((t) => t.includes('\ufffd')));
  assert.deepEqual(h.started(), { rows: 30, cols: 100 });
  h.terminal.input('x');
  assert.deepEqual(h.closed, [undefined]);
});

test('input typed before the process starts is sent in order; resize and Ctrl-C reach the pty', async () => {
  const proc = new FakeProcess([], undefined, true);
  let release: (p: GuestProcess) => void = () => undefined;
  const terminal = new GuestTerminal(
    () =>
      new Promise((resolve) => {
        release = resolve;
      }),
    { write: () => undefined, close: () => undefined },
  );
  terminal.open(undefined);
  terminal.input('ls\r');
  terminal.resize({ rows: 40, cols: 120 });
  release(proc);
  await settle();
  terminal.input('\x03');
  await settle();
  assert.deepEqual(proc.stdin, ['ls\r', '\x03']);
  assert.deepEqual(proc.sizes[0], [40, 120]);
});

test('closing the terminal hangs up the guest session; a signal exit is reported by name', async () => {
  const proc = new FakeProcess([Buffer.from('x')], { exitCode: -1, signal: 'SIGHUP' }, true);
  const h = harness(proc);
  h.terminal.open(undefined);
  await settle();
  h.terminal.close();
  for (let i = 0; i < 5; i++) await settle();
  assert.deepEqual(proc.signals, ['SIGHUP']);
  assert.match(h.out.join(''), /process ended by SIGHUP/);
});
