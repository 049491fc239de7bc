import { ChildProcess, spawn } from 'node:child_process';

/**
 * The host's tsserver (the typescript devDependency), driven over its stdio protocol as VS
 * Code drives it: open a file, ask for its diagnostics and quick info.
 */
export class TsServer {
  private readonly child: ChildProcess;
  private seq = 0;
  private buffer = Buffer.alloc(0);
  private readonly pending = new Map<number, (response: TsResponse) => void>();

  constructor() {
    this.child = spawn(
      process.execPath,
      [require.resolve('typescript/lib/tsserver.js'), '--disableAutomaticTypingAcquisition', '--useNodeIpc=false'],
      {
        stdio: ['pipe', 'pipe', 'ignore'],
      },
    );
    this.child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  open(file: string): void {
    this.send('open', { file });
  }

  /** Semantic diagnostics of an open file, as `TSnnnn: message` lines. */
  async diagnostics(file: string): Promise<string[]> {
    const response = await this.request('semanticDiagnosticsSync', { file });
    const body = (response.body ?? []) as Array<{ code: number; text: string }>;
    return body.map((d) => `TS${d.code}: ${d.text}`);
  }

  /** What hovering at line:offset (1-based) shows. */
  async quickInfo(file: string, line: number, offset: number): Promise<string> {
    const response = await this.request('quickinfo', { file, line, offset });
    return (response.body as { displayString?: string } | undefined)?.displayString ?? '';
  }

  close(): void {
    this.child.kill('SIGKILL');
  }

  private request(command: string, args: unknown): Promise<TsResponse> {
    const seq = this.send(command, args);
    return new Promise((resolve) => this.pending.set(seq, resolve));
  }

  private send(command: string, args: unknown): number {
    const seq = ++this.seq;
    this.child.stdin!.write(`${JSON.stringify({ seq, type: 'request', command, arguments: args })}\n`);
    return seq;
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const headerEnd = this.buffer.indexOf('\r\n\r\n');
      if (headerEnd === -1) return;
      const length = Number(/Content-Length: (\d+)/.exec(this.buffer.toString('latin1', 0, headerEnd))?.[1]);
      if (this.buffer.length < headerEnd + 4 + length) return;
      const message = JSON.parse(this.buffer.toString('utf8', headerEnd + 4, headerEnd + 4 + length)) as TsResponse;
      this.buffer = this.buffer.subarray(headerEnd + 4 + length);
      if (message.type === 'response') {
        this.pending.get(message.request_seq)?.(message);
        this.pending.delete(message.request_seq);
      }
    }
  }
}

interface TsResponse {
  type: string;
  request_seq: number;
  success: boolean;
  body?: unknown;
  message?: string;
}
