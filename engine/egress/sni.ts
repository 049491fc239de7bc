/**
 * The server name a TLS ClientHello asks for (SNI), read from the first bytes a client sends
 * after CONNECT, so the proxy can refuse a hello whose name is not the one it allowed (domain
 * fronting: CONNECT an allowed CDN name, then ask the CDN for another site). Nothing is
 * decrypted; a malformed hello is `malformed`, a stream that is not TLS is `not-tls`.
 */
export type HelloName = { name: string } | { none: true } | 'need-more' | 'not-tls' | 'malformed';

/** A ClientHello fits in a few KiB; one bigger than this is refused rather than buffered. */
export const MAX_HELLO_BYTES = 16 * 1024 + 5;

export function readHelloName(data: Buffer): HelloName {
  if (data.length < 5) return data.length > 0 && data[0] !== 0x16 ? 'not-tls' : 'need-more';
  if (data[0] !== 0x16) return 'not-tls';
  const recordLength = data.readUInt16BE(3);
  if (recordLength > MAX_HELLO_BYTES - 5) return 'malformed';
  if (data.length < 5 + recordLength) return 'need-more';
  const hello = data.subarray(5, 5 + recordLength);
  let at = 0;
  const need = (n: number) => at + n <= hello.length;
  if (!need(4) || hello[0] !== 0x01) return 'malformed';
  at = 4 + 2 + 32; // handshake header, version, random
  if (!need(1)) return 'malformed';
  at += 1 + hello.readUInt8(at); // session id
  if (!need(2)) return 'malformed';
  at += 2 + hello.readUInt16BE(at); // cipher suites
  if (!need(1)) return 'malformed';
  at += 1 + hello.readUInt8(at); // compression methods
  if (at === hello.length) return { none: true };
  if (!need(2)) return 'malformed';
  const end = at + 2 + hello.readUInt16BE(at);
  at += 2;
  if (end > hello.length) return 'malformed';
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    at += 4;
    if (at + length > end) return 'malformed';
    if (type === 0x0000) return serverName(hello.subarray(at, at + length));
    at += length;
  }
  return { none: true };
}

function serverName(ext: Buffer): HelloName {
  if (ext.length < 2) return 'malformed';
  let at = 2;
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  while (at + 3 <= end) {
    const type = ext[at];
    const length = ext.readUInt16BE(at + 1);
    at += 3;
    if (at + length > end) return 'malformed';
    if (type === 0) return { name: ext.subarray(at, at + length).toString('latin1') };
    at += length;
  }
  return 'malformed';
}
