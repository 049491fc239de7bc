import { MicrovmError } from '../errors';
import { AgentConnection, AgentInfo } from './connection';
import { ExecChild } from './exec-child';
import { decodeWaitResult, encodeProcessRequest, HOST_TIMEOUT_GRACE_MS, ProcessRequest, WaitResult, withDeadline } from './process';
import { FrameType, MAX_FILE, MountKind, Op, Tag } from './protocol';
import { linuxSignalNumber, SignalSpec } from './signals';
import { TlvWriter } from './tlv';

export interface CollectedResult extends WaitResult {
  stdout: Buffer;
  stderr: Buffer;
}

/** Calls the guest agent offers, over one AgentConnection. */
export class AgentClient {
  constructor(readonly connection: AgentConnection, readonly info: AgentInfo) {}

  /** Runs a process to completion, collecting at most `maxBuffer` bytes of output. */
  async exec(request: ProcessRequest, maxBuffer: number): Promise<CollectedResult> {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let total = 0;
    let stream = 0;
    let overflowed = false;
    // Past maxBuffer the process is killed and its remaining output is dropped, but still
    // granted: the agent sends what is left in the pipes before it reports the exit.
    const collect = (into: Buffer[]) => (data: Buffer) => {
      this.connection.grantOutput(stream, data.length);
      if (overflowed) return;
      total += data.length;
      if (total > maxBuffer) {
        overflowed = true;
        const kill = Buffer.alloc(4);
        kill.writeUInt32LE(9);
        this.connection.send(FrameType.SIGNAL, stream, kill);
        return;
      }
      into.push(data);
    };
    const response = this.connection.request(encodeProcessRequest(request), {
      onStdout: collect(stdout),
      onStderr: collect(stderr),
    }, (id) => { stream = id; });
    const hostDeadline = request.timeoutMs > 0 ? request.timeoutMs + HOST_TIMEOUT_GRACE_MS : 0;
    const fields = await withDeadline(response, hostDeadline, () => new MicrovmError('E_AGENT_TIMEOUT',
      `the guest agent did not end '${request.argv[0]}' within ${hostDeadline} ms (its timeout plus ${HOST_TIMEOUT_GRACE_MS} ms)`));
    if (overflowed) {
      throw new MicrovmError('E_OUTPUT_LIMIT',
        `'${request.argv[0]}' wrote more than ${maxBuffer} bytes of output; it was killed. Raise maxBuffer or use vm.spawn() to stream the output`);
    }
    return { ...decodeWaitResult(fields), stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
  }

  spawn(request: ProcessRequest): ExecChild {
    return new ExecChild(this.connection, request);
  }

  async writeFile(path: string, data: Buffer, mode: number): Promise<void> {
    checkFileSize(path, data.length);
    await this.connection.request(new TlvWriter().u32(Tag.OP, Op.WRITE_FILE).str(Tag.PATH, path).u32(Tag.MODE, mode).raw(Tag.DATA, data));
  }

  async readFile(path: string): Promise<Buffer> {
    const fields = await this.connection.request(new TlvWriter().u32(Tag.OP, Op.READ_FILE).str(Tag.PATH, path));
    const data = fields.bytes(Tag.DATA) ?? Buffer.alloc(0);
    checkFileSize(path, data.length);
    return Buffer.from(data);
  }

  async signalWorkload(signal: SignalSpec): Promise<void> {
    await this.connection.request(new TlvWriter().u32(Tag.OP, Op.SIGNAL_WORKLOAD).u32(Tag.SIGNO, linuxSignalNumber(signal)));
  }

  async ping(): Promise<void> {
    await this.connection.request(new TlvWriter().u32(Tag.OP, Op.PING));
  }

  /** Tells a just-restored guest to mix `seed` into its RNG and set its clock to `timeNs`. */
  async restored(seed: Buffer, timeNs: bigint): Promise<void> {
    await this.connection.request(new TlvWriter().u32(Tag.OP, Op.RESTORED).raw(Tag.RNG_SEED, seed).u64(Tag.TIME_NS, timeNs));
  }

  /** Mounts a virtio-fs share (by tag) or a virtio-blk ext4 volume (by serial) at `path` in the guest. */
  async mount(kind: 'virtiofs' | 'volume', source: string, path: string, readOnly: boolean): Promise<void> {
    await this.connection.request(new TlvWriter().u32(Tag.OP, Op.MOUNT).u32(Tag.MOUNT_KIND, kind === 'virtiofs' ? MountKind.VIRTIOFS : MountKind.VOLUME)
      .str(Tag.MOUNT_SOURCE, source).str(Tag.PATH, path).u32(Tag.READ_ONLY, readOnly ? 1 : 0));
  }

  /** Asks the agent to sync and power off; resolves when it has acknowledged. */
  async shutdown(): Promise<void> {
    await this.connection.request(new TlvWriter().u32(Tag.OP, Op.SHUTDOWN));
  }
}

function checkFileSize(path: string, size: number): void {
  if (size > MAX_FILE) {
    throw new MicrovmError('E_FILE_TOO_LARGE',
      `${path} is ${size} bytes; readFile and writeFile carry at most ${MAX_FILE} bytes (4 MiB). Use vm.spawn() with stdin/stdout to stream larger files`);
  }
}
