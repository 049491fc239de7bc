import * as net from 'node:net';

/**
 * The compose rows' one client program, run by node in the app VM (to db:6379, through the
 * relay) and by the host's node (to the db's forward, to the relay's unix socket, to a host
 * echo server): the same code on each path, so the paths differ only in what carries the bytes.
 * PORT '-' makes HOST a unix socket path.
 *
 *   node client.js ping HOST PORT N       one connection, 20 warm-up PINGs, then N timed ones
 *   node client.js connect HOST PORT N    N x (connect, PING, +PONG, close), 3 warm-up
 *   node client.js set HOST PORT N BYTES  one connection, N x SET of BYTES bytes until +OK, 1 warm-up
 *
 * It prints one JSON line: {"values": [...]} in ms per round trip, or MB/s (10^6 bytes) per SET.
 */
export const CLIENT_JS = `'use strict';
const net = require('net');
const [mode, host, portText, countText, bytesText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const now = () => Number(process.hrtime.bigint()) / 1e6;

function open() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(portText === '-' ? { path: host } : { host, port });
    socket.setNoDelay(true);
    let buffered = '';
    let waiting;
    socket.on('data', (d) => {
      buffered += d;
      if (waiting && buffered.endsWith('\\r\\n')) { const w = waiting; waiting = undefined; const r = buffered; buffered = ''; w.resolve(r); }
    });
    socket.on('error', (e) => (waiting ? waiting.reject(e) : reject(e)));
    socket.on('close', () => waiting && waiting.reject(new Error('connection closed')));
    const call = (payload) => new Promise((res, rej) => { waiting = { resolve: res, reject: rej }; socket.write(payload); });
    socket.once('connect', () => resolve({ socket, call }));
  });
}

async function expect(call, payload, reply) {
  const got = await call(payload);
  if (got !== reply) throw new Error('expected ' + JSON.stringify(reply) + ', got ' + JSON.stringify(got.slice(0, 80)));
}

async function ping() {
  const { socket, call } = await open();
  const values = [];
  for (let i = 0; i < 20 + count; i++) {
    const started = now();
    await expect(call, 'PING\\r\\n', '+PONG\\r\\n');
    if (i >= 20) values.push(now() - started);
  }
  socket.destroy();
  return values;
}

async function connect() {
  const values = [];
  for (let i = 0; i < 3 + count; i++) {
    const started = now();
    const { socket, call } = await open();
    await expect(call, 'PING\\r\\n', '+PONG\\r\\n');
    if (i >= 3) values.push(now() - started);
    socket.destroy();
  }
  return values;
}

async function set() {
  const bytes = Number(bytesText);
  const value = Buffer.alloc(bytes, 120);
  const head = '*3\\r\\n$3\\r\\nSET\\r\\n$10\\r\\nbench:blob\\r\\n$' + bytes + '\\r\\n';
  const { socket, call } = await open();
  const values = [];
  for (let i = 0; i < 1 + count; i++) {
    const started = now();
    const done = call(head);
    socket.write(value);
    socket.write('\\r\\n');
    const got = await done;
    if (got !== '+OK\\r\\n') throw new Error('SET: ' + JSON.stringify(got.slice(0, 80)));
    if (i >= 1) values.push(bytes / 1e6 / ((now() - started) / 1000));
  }
  await expect(call, 'DEL bench:blob\\r\\n', ':1\\r\\n');
  socket.destroy();
  return values;
}

({ ping, connect, set })[mode]().then(
  (values) => console.log(JSON.stringify({ values })),
  (err) => { console.error(String(err && err.stack || err)); process.exit(1); },
);
`;

/** A host echo server that answers every PING line with +PONG: the host loopback baseline. */
export async function startPongServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let pending = '';
    socket.on('data', (d) => {
      pending += String(d);
      let replies = '';
      for (let end = pending.indexOf('\r\n'); end >= 0; end = pending.indexOf('\r\n')) {
        replies += '+PONG\r\n';
        pending = pending.slice(end + 2);
      }
      if (replies) socket.write(replies);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
