import { Tag } from './protocol';

/** TLV field codec (protocol.md "TLV payloads"): u16 tag, u32 length, value. */

const U32_TAGS = new Set<number>([
  Tag.OP,
  Tag.TIMEOUT_MS,
  Tag.TTY,
  Tag.ROWS,
  Tag.COLS,
  Tag.STAGE_MODE,
  Tag.WORKLOAD,
  Tag.MODE,
  Tag.SIGNO,
  Tag.UID,
  Tag.GID,
  Tag.STATUS,
  Tag.ERRNO,
  Tag.SIGNAL,
  Tag.TIMED_OUT,
  Tag.PROTO_VERSION,
  Tag.PORT,
  Tag.PID,
  Tag.FAMILY,
  Tag.EVENT_KIND,
]);
const I32_TAGS = new Set<number>([Tag.EXIT_CODE]);
const U64_TAGS = new Set<number>([Tag.PEAK_RSS_KIB, Tag.NONCE, Tag.TIME_NS]);

export class TlvWriter {
  private parts: Buffer[] = [];
  size = 0;

  u32(tag: number, value: number): this {
    const buf = Buffer.allocUnsafe(4);
    buf.writeUInt32LE(value >>> 0);
    return this.raw(tag, buf);
  }

  u64(tag: number, value: bigint): this {
    const buf = Buffer.allocUnsafe(8);
    buf.writeBigUInt64LE(value);
    return this.raw(tag, buf);
  }

  str(tag: number, value: string): this {
    if (value.includes('\0')) throw new TypeError(`string field ${tag} contains a NUL byte`);
    return this.raw(tag, Buffer.from(value, 'utf8'));
  }

  nested(tag: number, inner: TlvWriter): this {
    return this.raw(tag, inner.toBuffer());
  }

  raw(tag: number, value: Buffer): this {
    const head = Buffer.allocUnsafe(6);
    head.writeUInt16LE(tag, 0);
    head.writeUInt32LE(value.length, 2);
    this.parts.push(head, value);
    this.size += 6 + value.length;
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

export class TlvError extends Error {}

/** Parsed fields, by tag, in order of appearance. Integer fields are checked for width. */
export class TlvFields {
  constructor(private readonly fields: Map<number, Buffer[]>) {}

  all(tag: number): Buffer[] {
    return this.fields.get(tag) ?? [];
  }

  has(tag: number): boolean {
    return this.fields.has(tag);
  }

  bytes(tag: number): Buffer | undefined {
    return this.fields.get(tag)?.[0];
  }

  str(tag: number): string | undefined {
    return this.bytes(tag)?.toString('utf8');
  }

  strs(tag: number): string[] {
    return this.all(tag).map((b) => b.toString('utf8'));
  }

  u32(tag: number): number | undefined {
    return this.bytes(tag)?.readUInt32LE(0);
  }

  i32(tag: number): number | undefined {
    return this.bytes(tag)?.readInt32LE(0);
  }

  u64(tag: number): bigint | undefined {
    return this.bytes(tag)?.readBigUInt64LE(0);
  }
}

function expectedWidth(tag: number): number | undefined {
  if (U32_TAGS.has(tag) || I32_TAGS.has(tag)) return 4;
  if (U64_TAGS.has(tag)) return 8;
  return undefined;
}

/** Parses a TLV payload from the guest; throws TlvError on any field that does not fit. */
export function parseTlv(payload: Buffer, maxFields = 10_000): TlvFields {
  const fields = new Map<number, Buffer[]>();
  let offset = 0;
  let count = 0;
  while (offset < payload.length) {
    if (++count > maxFields) throw new TlvError(`more than ${maxFields} TLV fields`);
    if (payload.length - offset < 6) throw new TlvError(`truncated TLV header at offset ${offset}`);
    const tag = payload.readUInt16LE(offset);
    const length = payload.readUInt32LE(offset + 2);
    offset += 6;
    if (length > payload.length - offset) {
      throw new TlvError(`TLV field ${tag} of ${length} bytes runs past the payload at offset ${offset}`);
    }
    const width = expectedWidth(tag);
    if (width !== undefined && length !== width) {
      throw new TlvError(`TLV field ${tag} has ${length} bytes, expected ${width}`);
    }
    const value = payload.subarray(offset, offset + length);
    offset += length;
    const list = fields.get(tag);
    if (list) list.push(value);
    else fields.set(tag, [value]);
  }
  return new TlvFields(fields);
}
