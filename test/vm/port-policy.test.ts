import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ExecChild,
  ForwardedPort,
  MAX_AUTO_FORWARDS,
  NOTICE_WINDOW_MS,
  NOTICES_PER_WINDOW,
  WELL_KNOWN_SERVICE_PORTS,
} from '../../engine';
import type { PortsConfig, WorkspacePlan } from '../../engine';
import { Session, SessionEvents } from '../../engine';
import { sessionRows } from '../../extension/ports/rules';
import { freePort } from '../helpers/free-port';

/**
 * The auto-forward policy on real VMs, driven through Session (no VS Code): a guest cannot
 * squat a host port, cannot flood the host with forwards or notifications, and a declared
 * well-known service port takes its own host port only after the user agrees.
 */
const sessions: Session[] = [];
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-port-policy-'));

after(async () => {
  for (const session of sessions) await session.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

function plan(ports: Partial<PortsConfig> = {}): WorkspacePlan {
  return {
    source: { kind: 'image', ref: undefined },
    memoryMib: 256,
    vcpus: 1,
    network: 'none',
    allow: [],
    trustCertificates: 'off',
    containerEnv: {},
    remoteEnv: {},
    workspaceFolder: '/root',
    mounts: [],
    volumes: [],
    tmpfs: [],
    hooks: {},
    metadataHooks: {},
    features: [],
    customizations: {},
    waitFor: 'updateContentCommand',
    updateRemoteUserUID: false,
    userEnvProbe: 'none',
    hosts: [],
    problems: [],
    ports: { forward: [], servicePorts: [], publish: [], attributes: {}, ...ports },
  };
}

/** Session events that record every notice, per guest port, and every log line. */
class Recorder implements SessionEvents {
  readonly notices = new Map<number, string[]>();
  readonly logs: string[] = [];
  summaries = 0;
  answer: (port: ForwardedPort) => Promise<boolean> = async () => false;
  log(line: string): void {
    this.logs.push(line);
  }
  baking(): void {}
  booting(): void {}
  portsChanged(): void {}
  exited(error: Error): void {
    this.logs.push(`exited: ${error.message}`);
  }
  output(): void {}
  hookFailed(description: string): void {
    this.logs.push(`hook failed: ${description}`);
  }
  portForwarded(port: ForwardedPort, action: string): void {
    this.note(port.guestPort, action);
  }
  confirmSameHostPort(port: ForwardedPort): Promise<boolean> {
    this.note(port.guestPort, 'ask');
    return this.answer(port);
  }
  portsSummary(ports: ForwardedPort[]): void {
    this.summaries++;
    for (const port of ports) this.note(port.guestPort, 'summary');
  }
  get maxPerPort(): number {
    return Math.max(0, ...[...this.notices.values()].map((n) => n.length));
  }
  get total(): number {
    return [...this.notices.values()].reduce((sum, n) => sum + n.length, 0);
  }
  private note(port: number, kind: string): void {
    this.notices.set(port, [...(this.notices.get(port) ?? []), kind]);
  }
}

async function startSession(p: WorkspacePlan, events: SessionEvents): Promise<Session> {
  const session = new Session(p, events, { done: [], markDone: async () => undefined });
  sessions.push(session);
  await session.start();
  await session.running.writeFile('/srv/index.html', 'from the guest\n');
  return session;
}

function forwardedRows(session: Session) {
  return sessionRows(session).filter((r) => r.localAddress !== undefined);
}

function hostPortOf(session: Session, guestPort: number): number | undefined {
  const address = sessionRows(session).find((r) => r.guestPort === guestPort)?.localAddress;
  return address === undefined ? undefined : Number(address.split(':')[1]);
}

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function httpd(session: Session, port: number): ExecChild {
  return session.running.spawn({ argv: ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/srv'], timeoutMs: 0 });
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/index.html', agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d;
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Host TCP listeners of this process: every forward is one. */
function hostListeners(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
}

test('a guest listener gets a free host port; a host service then binds the same port and gets its own clients', async () => {
  const port = await freePort();
  const events = new Recorder();
  const session = await startSession(plan(), events);
  httpd(session, port);
  const hostPort = await until(`guest port ${port} to be forwarded`, () => hostPortOf(session, port));
  assert.notEqual(hostPort, port, 'an undeclared guest port must not take the same host port');
  assert.equal(await get(hostPort), 'from the guest\n');

  const hostService = http.createServer((_, res) => res.end('from the host\n'));
  await new Promise<void>((resolve, reject) => hostService.once('error', reject).listen(port, '127.0.0.1', resolve));
  try {
    assert.equal(await get(port), 'from the host\n', 'the host service wins its own port');
    assert.equal(await get(hostPort), 'from the guest\n');
  } finally {
    hostService.close();
  }
  assert.deepEqual(events.notices.get(port), ['notify']);
});

/** A static program that listens on COUNT loopback ports from BASE until its stdin closes. */
function manyListeners(): Buffer {
  const src = path.join(scratch, 'listen-many.c');
  fs.writeFileSync(
    src,
    `#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int base = atoi(argv[1]), count = atoi(argv[2]);
  for (int i = 0; i < count; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base + i), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8)) {
      perror("listen");
      return 1;
    }
  }
  printf("listening on %d ports\\n", count);
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {}
  return 0;
}
`,
  );
  const binary = path.join(scratch, 'listen-many');
  execFileSync('gcc', ['-static', '-O2', '-o', binary, src]);
  return fs.readFileSync(binary);
}

test(`300 guest listeners: at most ${MAX_AUTO_FORWARDS} forwards, one notice per port at most, all removed when they close; twice`, async () => {
  const events = new Recorder();
  const session = await startSession(plan(), events);
  await session.running.writeFile('/tmp/listen-many', manyListeners(), { mode: 0o755 });
  const baseline = hostListeners();
  const testStarted = performance.now();
  let maxForwards = 0;
  let maxListeners = 0;
  const sampler = setInterval(() => {
    maxForwards = Math.max(maxForwards, forwardedRows(session).length);
    maxListeners = Math.max(maxListeners, hostListeners() - baseline);
  }, 20);
  try {
    for (const round of [1, 2]) {
      const started = performance.now();
      const child = session.running.spawn({ argv: ['/tmp/listen-many', '20000', '300'], timeoutMs: 0 });
      assert.match((await child.readStdout()).toString(), /listening on 300 ports/);
      await until('32 forwards', () => forwardedRows(session).length === MAX_AUTO_FORWARDS, 60_000);
      const forwardedMs = performance.now() - started;
      // The agent reports at most 256 listeners; every one of them is listed, forwarded or with its reason.
      const listed = await until(
        'the listeners to be listed',
        () => {
          const rows = sessionRows(session).filter((r) => r.guestPort >= 20000 && r.guestPort < 20300);
          return rows.length >= 256 && rows;
        },
        60_000,
      );
      await session.portsSettled();
      const unforwarded = listed.filter((r) => r.localAddress === undefined);
      assert.ok(
        unforwarded.every((r) => /automatic forwards is the limit/.test(r.note)),
        JSON.stringify(unforwarded.slice(0, 3)),
      );
      const someForward = forwardedRows(session)[0];
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(Number(someForward!.localAddress?.split(':')[1]), '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
      });

      child.closeStdin();
      await child.wait();
      const closed = performance.now();
      await until('every auto-forward to go', () => forwardedRows(session).length === 0, 60_000);
      const removedMs = performance.now() - closed;
      await until('the host listeners to close', () => hostListeners() === baseline, 10_000);
      console.log(
        `# round ${round}: ${listed.length} listed, ${MAX_AUTO_FORWARDS} forwarded in ${forwardedMs.toFixed(0)} ms, ` +
          `all removed ${removedMs.toFixed(0)} ms after the listeners closed; notices so far: ${events.total} (${events.summaries} summaries), ` +
          `max forwards ${maxForwards}, max host listeners ${maxListeners}`,
      );
    }
  } finally {
    clearInterval(sampler);
  }
  assert.ok(maxForwards <= MAX_AUTO_FORWARDS, `max forwards ${maxForwards}`);
  assert.ok(maxListeners <= MAX_AUTO_FORWARDS, `max host listeners ${maxListeners}`);
  assert.ok(events.maxPerPort <= 1, `a port got ${events.maxPerPort} notices`);
  // The budget: per window, a few notices of their own and one summary.
  const windows = Math.ceil((performance.now() - testStarted) / NOTICE_WINDOW_MS);
  const own = [...events.notices.values()].flat().filter((kind) => kind !== 'summary').length;
  assert.ok(own <= NOTICES_PER_WINDOW * windows, `${own} notices of their own in ${windows} windows`);
  assert.ok(events.summaries <= windows, `${events.summaries} summaries in ${windows} windows`);
  const limitLines = events.logs.filter((l) => /auto-forwarded, the limit/.test(l)).length;
  assert.ok(limitLines >= 2 && limitLines <= 4, `${limitLines} log lines about the limit`);
  console.log(
    `# notices: ${events.total} ports told in ${events.summaries} summaries and ${own} of their own; ${limitLines} log lines about the limit; ${events.logs.length} log lines in all`,
  );
});

async function freeWellKnownPorts(count: number): Promise<number[]> {
  const free: number[] = [];
  for (const port of WELL_KNOWN_SERVICE_PORTS) if (free.length < count && (await canBind(port))) free.push(port);
  assert.equal(free.length, count, 'not enough well-known service ports are free on this host');
  return free;
}

test('a declared well-known port asks before it takes the same host port; a declared ordinary port takes it at once', async () => {
  const [askedYes, askedNo] = await freeWellKnownPorts(2);
  assert.ok(askedYes !== undefined && askedNo !== undefined);
  const ordinary = await freePort();
  const events = new Recorder();
  const asked: Array<{ port: ForwardedPort; hostPortFree: boolean }> = [];
  let agree: (yes: boolean) => void = () => undefined;
  events.answer = async (port) => {
    asked.push({ port, hostPortFree: await canBind(port.guestPort) });
    if (port.guestPort === askedNo) return false;
    return new Promise<boolean>((resolve) => {
      agree = resolve;
    });
  };
  const session = await startSession(
    plan({
      forward: [askedNo],
      attributes: { [askedYes]: { label: 'db' }, [ordinary]: { label: 'web' } },
    }),
    events,
  );
  for (const port of [askedYes, askedNo, ordinary]) httpd(session, port!);

  assert.equal(await until('the declared ordinary port', () => hostPortOf(session, ordinary)), ordinary);
  const freeHostPort = await until('the well-known port on a free host port', () => hostPortOf(session, askedYes!));
  assert.notEqual(freeHostPort, askedYes);
  await until('the question', () => asked.some((a) => a.port.guestPort === askedYes));
  assert.ok(
    asked.every((a) => a.hostPortFree),
    'nothing bound the same host port before the answer',
  );
  assert.equal(hostPortOf(session, askedYes!), freeHostPort);
  assert.equal(await get(freeHostPort), 'from the guest\n');

  agree(true);
  await until('the move to the same host port', () => hostPortOf(session, askedYes!) === askedYes);
  assert.equal(await get(askedYes!), 'from the guest\n');
  assert.equal(await canBind(freeHostPort), true, 'the free port it had is closed');

  // forwardPorts asked too; the answer was no: it stays on a free port.
  await until('the no answer', () => asked.some((a) => a.port.guestPort === askedNo));
  await session.portsSettled();
  assert.notEqual(hostPortOf(session, askedNo!), askedNo);
  assert.equal(await canBind(askedNo!), true);
  assert.deepEqual(
    [events.notices.get(askedYes!), events.notices.get(askedNo!), events.notices.get(ordinary)],
    [['ask'], ['ask'], ['notify']],
  );
});
