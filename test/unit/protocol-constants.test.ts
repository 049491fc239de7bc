import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protocol from '../../engine/agent/protocol';

/** The C header is the one definition of the wire protocol; the TypeScript side must match it. */
const header = fs.readFileSync(path.join(__dirname, '../../native/agent/protocol.h'), 'utf8');

function cValue(name: string): number {
  const define = new RegExp(`#define ${name} (.+)`).exec(header);
  const enumerator = new RegExp(`\\b${name} = (\\d+)`).exec(header);
  const expr = define?.[1] ?? enumerator?.[1];
  assert.ok(expr, `${name} is not in protocol.h`);
  assert.match(expr, /^[\d\s*+()x0-9A-Fa-f]+$/);
  return Function(`return (${expr});`)() as number;
}

test('scalar limits match protocol.h', () => {
  for (const name of [
    'PROTO_VERSION',
    'FRAME_MAGIC',
    'HEADER_SIZE',
    'MAX_PAYLOAD',
    'MAX_CHUNK',
    'MAX_FILE',
    'OUTPUT_WINDOW',
    'STDIN_WINDOW',
    'MAX_STREAMS',
    'MAX_EXEC_STREAMS',
    'MAX_FORWARD_STREAMS',
    'MAX_WATCH_STREAMS',
    'MAX_ARGS',
    'MAX_CHAIN',
    'MAX_LISTENERS',
    'DEFAULT_PIDS_MAX',
    'MAX_PIDS_MAX',
    'MAX_FILE_EVENTS',
  ] as const) {
    assert.equal(protocol[name], cValue(name), name);
  }
});

test('frame types, tags, ops and statuses match protocol.h', () => {
  const groups: Array<[Record<string, number>, string]> = [
    [protocol.FrameType, 'FT_'],
    [protocol.Tag, 'TAG_'],
    [protocol.Op, 'OP_'],
    [protocol.Status, 'ST_'],
    [protocol.FileEventKind, 'FILE_EVENT_'],
  ];
  for (const [table, prefix] of groups) {
    for (const [name, value] of Object.entries(table)) assert.equal(value, cValue(prefix + name), prefix + name);
    const inHeader = header.match(new RegExp(`\\b${prefix}\\w+ =`, 'g')) ?? [];
    assert.equal(inHeader.length, Object.keys(table).length, `every ${prefix}* constant is mirrored`);
  }
});
