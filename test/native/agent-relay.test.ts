import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';

/**
 * `microvm-agent --relay`: the guest-side TCP relay for compose's `network_mode: service:X`
 * (localhost:PORT in one VM to X's service link address), run here on the host's loopback.
 */
const agentBinary = path.join(__dirname, '../../native/build/microvm-agent');

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(text));
    let got = '';
    socket.on('data', (d) => { got += String(d); });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

test('relays each listening address to its target, both ways with half-closes, many connections at once; bad arguments are refused', async () => {
  const upper = net.createServer({ allowHalfOpen: true }, (c) => {
    let text = '';
    c.on('data', (d) => { text += String(d); });
    c.on('end', () => c.end(text.toUpperCase()));
  });
  const target = await listen(upper);
  const [a, b] = [await freePort(), await freePort()];
  const relay = spawn(agentBinary, ['--relay', `127.0.0.1:${a}`, `127.0.0.1:${target}`, `127.0.0.1:${b}`, `127.0.0.1:${target}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const lines = readline.createInterface({ input: relay.stderr! });
    let listening = 0;
    await new Promise<void>((resolve) => lines.on('line', (l) => { if (/listening/.test(l) && ++listening === 2) resolve(); }));
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => exchange(i % 2 ? a : b, `hello ${i} `.repeat(5000))));
    replies.forEach((r, i) => assert.ok(r === `HELLO ${i} `.repeat(5000), `connection ${i}: ${r.length} bytes back, ${JSON.stringify(r.slice(0, 40))}`));
  } finally {
    relay.kill('SIGKILL');
    upper.close();
  }
  const bad = spawn(agentBinary, ['--relay', '127.0.0.1:1', 'nowhere'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  bad.stderr!.on('data', (d) => { err += String(d); });
  // 'close', not 'exit': exit can come before the last of stderr has been read
  const code = await new Promise<number | null>((r) => bad.on('close', r));
  assert.equal(code, 2);
  assert.match(err, /not ADDR:PORT/);
});
