/** What a terminal needs of a guest process (an engine ExecChild in tty mode, or a fake in tests). */
export interface GuestProcess {
  writeStdin(data: string): Promise<void>;
  readStdout(): Promise<Buffer>;
  resize(rows: number, cols: number): void;
  signal(signal: string): void;
  wait(): Promise<{ exitCode: number; signal: string | null }>;
}

/** Where the terminal's text goes (a vscode.Pseudoterminal's emitters, or a recorder in tests). */
export interface TerminalSink {
  write(text: string): void;
  close(exitCode: number | undefined): void;
}

export interface TerminalSize {
  rows: number;
  cols: number;
}

export type StartProcess = (size: TerminalSize) => Promise<GuestProcess>;

const DEFAULT_SIZE: TerminalSize = { rows: 24, cols: 80 };

/**
 * A terminal bound to a guest pty. Keystrokes (Ctrl-C included) go to the pty, whose line
 * discipline turns them into signals in the guest; output is decoded as a UTF-8 stream so a
 * character split across chunks renders once, whole. When the process ends the exit code is
 * shown and the next key closes the terminal.
 */
export class GuestTerminal {
  private process: GuestProcess | undefined;
  private pending: string[] = [];
  private size: TerminalSize = DEFAULT_SIZE;
  private exited = false;
  private closed = false;

  constructor(
    private readonly start: StartProcess,
    private readonly sink: TerminalSink,
  ) {}

  open(size: TerminalSize | undefined): void {
    if (size) this.size = size;
    this.start(this.size).then(
      (process) => this.attach(process),
      (err: Error) => this.fail(err),
    );
  }

  input(data: string): void {
    if (this.exited) return this.finish(undefined);
    if (!this.process) {
      this.pending.push(data);
      return;
    }
    void this.process.writeStdin(data).catch(() => undefined);
  }

  resize(size: TerminalSize): void {
    this.size = size;
    this.process?.resize(size.rows, size.cols);
  }

  /**
   * The terminal closed. The user closing it hangs up the guest session, as closing a real
   * terminal does; a window reload (hangUp false) leaves it running for the next window.
   */
  close(hangUp = true): void {
    this.closed = true;
    if (hangUp && this.process && !this.exited) this.process.signal('SIGHUP');
  }

  private attach(process: GuestProcess): void {
    this.process = process;
    if (this.closed) return void process.signal('SIGHUP');
    process.resize(this.size.rows, this.size.cols);
    for (const data of this.pending.splice(0)) void process.writeStdin(data).catch(() => undefined);
    void this.pump(process);
  }

  private async pump(process: GuestProcess): Promise<void> {
    const decoder = new TextDecoder('utf-8');
    for (let chunk = await process.readStdout(); chunk.length > 0; chunk = await process.readStdout()) {
      const text = decoder.decode(chunk, { stream: true });
      if (text) this.sink.write(text);
    }
    const rest = decoder.decode();
    if (rest) this.sink.write(rest);
    try {
      const result = await process.wait();
      this.exited = true;
      this.sink.write(`\r\n\x1b[2m[${exitMessage(result)}; press any key to close]\x1b[0m\r\n`);
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private fail(err: Error): void {
    this.exited = true;
    this.sink.write(`\r\n\x1b[31m[MicroVM: ${err.message}]\x1b[0m\r\n\x1b[2m[press any key to close]\x1b[0m\r\n`);
  }

  private finish(exitCode: number | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.close(exitCode);
  }
}

export function exitMessage(result: { exitCode: number; signal: string | null }): string {
  if (result.signal) return `process ended by ${result.signal}`;
  return `process exited with code ${result.exitCode}`;
}
