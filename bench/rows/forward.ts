import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ExecChild, Image, Vm } from '../../engine';
import { GroupResult } from '../types';
import { Sizes } from './sizes';
import { freePort } from '../../test/helpers/free-port';

const GUEST_PORT = 8080;

/**
 * A file downloaded over HTTP through vm.exposeTcp from busybox httpd in the guest, against
 * the same download from busybox httpd on the host over direct loopback TCP (the same
 * server program, the same client). Connect latency is connect() to the first response
 * byte of a 6-byte file; busybox httpd forks a child per connection on both sides.
 */
export async function measureForward(image: Image, sizes: Sizes, log: (line: string) => void): Promise<GroupResult> {
  const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-bench-forward-'));
  writeZeros(path.join(hostDir, 'blob'), sizes.forwardBytes);
  fs.writeFileSync(path.join(hostDir, 'small'), 'hello\n');
  const host = await startHostServer(hostDir);
  const pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
  let server: ExecChild | undefined;
  const ours: number[] = [];
  const direct: number[] = [];
  const connectOurs: number[] = [];
  const connectDirect: number[] = [];
  try {
    const vm = await pool.acquire();
    try {
      const mib = sizes.forwardBytes / 1024 / 1024;
      const prepared = await vm.exec({
        argv: [
          'sh',
          '-c',
          `mkdir -p /srv && dd if=/dev/zero of=/srv/blob bs=1M count=${mib} 2>/dev/null && echo hello > /srv/small`,
        ],
      });
      if (prepared.exitCode !== 0) throw new Error(`bench: cannot write the guest file: ${prepared.stderr}`);
      server = vm.spawn({ argv: ['httpd', '-f', '-p', String(GUEST_PORT), '-h', '/srv'], timeoutMs: 0 });
      await waitForGuestListener(vm, GUEST_PORT);
      const forwarder = await vm.exposeTcp(0, GUEST_PORT);
      const guestPort = forwarder.port;
      try {
        await download(guestPort, '/blob', sizes.forwardBytes);
        await download(host.port, '/blob', sizes.forwardBytes);
        for (let i = 0; i < sizes.forwardRuns; i++) {
          ours.push(mbPerSecond(sizes.forwardBytes, await download(guestPort, '/blob', sizes.forwardBytes)));
          direct.push(mbPerSecond(sizes.forwardBytes, await download(host.port, '/blob', sizes.forwardBytes)));
          log(
            `forward ${i + 1}/${sizes.forwardRuns}: ${ours[i]?.toFixed(0)} MB/s, loopback ${direct[i]?.toFixed(0)} MB/s`,
          );
        }
        for (let i = 0; i < 3; i++) {
          await firstByteMs(guestPort);
          await firstByteMs(host.port);
        }
        for (let i = 0; i < sizes.forwardConnects; i++) {
          connectOurs.push(await firstByteMs(guestPort));
          connectDirect.push(await firstByteMs(host.port));
        }
        log(`forward connect: ${connectOurs.length} connections`);
      } finally {
        await forwarder.stop();
      }
    } finally {
      server?.signal('SIGKILL');
      await vm.release();
    }
  } finally {
    await pool.shutdown();
    host.stop();
    fs.rmSync(hostDir, { recursive: true, force: true });
  }
  return {
    measurements: [
      {
        ours: { name: 'forward throughput', unit: 'MB/s', better: 'higher', values: ours },
        baseline: { name: 'direct loopback TCP', unit: 'MB/s', better: 'higher', values: direct },
      },
      {
        ours: { name: 'forward connect latency', unit: 'ms', better: 'lower', values: connectOurs },
        baseline: { name: 'direct loopback TCP connect', unit: 'ms', better: 'lower', values: connectDirect },
      },
    ],
    notes: [
      `Forward rows: HTTP GETs of a ${sizes.forwardBytes / 1024 / 1024} MiB file (MB = 10^6 bytes) and of a 6-byte file from busybox httpd, ` +
        `in the guest through vm.exposeTcp and ${host.kind} on the host over 127.0.0.1; connect latency is connect() to the first response byte ` +
        'and includes the server forking a child for the connection (under TCG the guest fork dominates it).',
    ],
  };
}

async function waitForGuestListener(vm: Vm, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await vm.listeningPorts()).some((l) => l.port === port)) {
    if (Date.now() > deadline) throw new Error(`bench: nothing listens on guest port ${port}`);
    await delay(50);
  }
}

function writeZeros(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let written = 0; written < bytes; written += chunk.length)
      fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - written));
  } finally {
    fs.closeSync(fd);
  }
}

/** busybox httpd on the host when there is one (the guest's server program), else Node's http. */
async function startHostServer(dir: string): Promise<{ port: number; kind: string; stop(): void }> {
  let busybox: string | undefined;
  try {
    busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    busybox = undefined;
  }
  if (busybox) {
    const port = await freePort();
    const child: ChildProcess = spawn(busybox, ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', dir], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new Error('bench: host busybox httpd did not start');
      }
      await delay(20);
    }
    return { port, kind: 'busybox httpd', stop: () => child.kill('SIGKILL') };
  }
  const server = http.createServer((req, res) => {
    const file = path.join(dir, path.basename(req.url ?? ''));
    fs.createReadStream(file)
      .on('error', () => res.writeHead(404).end())
      .pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, kind: 'a Node http server', stop: () => server.close() };
}

/** Seconds to download `urlPath` in full; checks the byte count. */
function download(port: number, urlPath: string, bytes: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let received = 0;
        res.on('data', (d: Buffer) => {
          received += d.length;
        });
        res.on('end', () => {
          const seconds = (performance.now() - started) / 1000;
          if (res.statusCode !== 200 || received !== bytes)
            reject(
              new Error(`bench: GET ${urlPath} on ${port}: status ${res.statusCode}, ${received} of ${bytes} bytes`),
            );
          else resolve(seconds);
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** connect() to the first byte of the response to a GET of /small; the body is drained. */
function firstByteMs(port: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /small HTTP/1.0\r\nHost: x\r\n\r\n'));
    let elapsed: number | undefined;
    socket.on('data', () => {
      elapsed ??= performance.now() - started;
    });
    socket.once('error', reject);
    socket.once('close', () =>
      elapsed === undefined ? reject(new Error(`bench: no response on port ${port}`)) : resolve(elapsed),
    );
  });
}

function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}
