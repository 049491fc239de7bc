import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { buildImage, Image, isMicrovmError, type BuildImageProgress, type BuiltImage } from '../../engine';
import { homePaths, microvmHome } from '../../engine/paths';
import { debianImage, debianMinbase } from '../helpers/debian-images';
import { freePort } from '../helpers/free-port';
import { pushImage } from '../helpers/registry-push';
import { startRegistry, type TestRegistry } from '../helpers/registry-server';
import { liveProcessesMentioning } from './qemu-proc';

/**
 * Dockerfile builds in the builder microVM against real VMs. `FROM debian:bookworm` is served
 * by Debian's docker-registry on loopback through MICROVM_REGISTRY_MIRRORS (a minbase made
 * here with mmdebstrap); RUN steps reach Debian's mirror through the builder's NAT.
 */
let tmp: string;
let ws: string;
let registry: TestRegistry;
const savedMirrors = process.env.MICROVM_REGISTRY_MIRRORS;
const hostMarker = path.join(os.tmpdir(), `microvm-build-escape-${process.pid}`);

const DOCKERFILE = `# A workspace's image: two stages, ARG before FROM, COPY --from, USER.
ARG BASE=debian:bookworm
FROM \${BASE} AS tools
RUN echo "built on $(uname -r)" > /tool.txt && uname -a && grep -m1 'model name' /proc/cpuinfo && echo RUN_ID
FROM \${BASE}
ARG GREETING=unset
ENV GREETING=\${GREETING}
RUN --mount=type=cache,target=/var/cache/apt apt-get update -q && apt-get install -y -q --no-install-recommends jq && rm -rf /var/lib/apt/lists/*
RUN useradd -m -u 1000 dev
COPY --from=tools /tool.txt /opt/tool.txt
RUN echo escaped > ${hostMarker}; mkdir -p WS && echo escaped-write > WS/escaped.txt && cat WS/escaped.txt
RUN --mount=type=bind,target=/src,rw touch /src/written-through-bind && ls /src
USER dev
WORKDIR /home/dev
COPY --chown=dev:dev . /home/dev/ws/
`;

function writeWorkspace(): void {
  const files: Record<string, string> = {
    // RUN_ID makes this run's first RUN new to the builder's cache, which persists between runs.
    '.devcontainer/Dockerfile': DOCKERFILE.replaceAll('WS', ws).replace('RUN_ID', `run-${process.pid}-${Date.now()}`),
    '.dockerignore': '# never sent to the builder\n.env\n',
    '.env': 'API_TOKEN=do-not-ship\n',
    'app/data.txt': 'first\n',
    'app/run.sh': '#!/bin/sh\necho run\n',
  };
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), data);
  }
}

/** Every file of the folder with its content, to show a build changed nothing on the host. */
function snapshotOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const child = rel ? `${rel}/${name}` : name;
      const stat = fs.lstatSync(path.join(dir, child));
      if (stat.isDirectory()) walk(child);
      else out[child] = fs.readFileSync(path.join(dir, child), 'utf8');
    }
  };
  walk('');
  return out;
}

async function build(
  events: BuildImageProgress[],
  extra: Partial<Parameters<typeof buildImage>[0]> = {},
): Promise<BuiltImage> {
  return buildImage({
    context: ws,
    dockerfile: '.devcontainer/Dockerfile',
    args: { GREETING: 'hello from a build arg' },
    onProgress: (e) => events.push(e),
    ...extra,
  });
}

async function inImage(ref: string, script: string): Promise<string> {
  const image = await Image.build({ ref, snapshot: false });
  const pool = image.pool({ min: 1, max: 1, acquireTimeoutMs: 0 });
  try {
    const vm = await pool.acquire();
    const result = await vm.exec({ argv: ['/bin/sh', '-c', script] });
    assert.equal(result.exitCode, 0, result.stderr);
    await vm.release();
    return result.stdout;
  } finally {
    await pool.shutdown();
  }
}

function logText(events: BuildImageProgress[]): string {
  return events.flatMap((e) => (e.phase === 'log' ? [e.line] : [])).join('\n');
}

/** No QEMU, virtiofsd or launcher of this home is left (a launcher's watchdog may take a moment to see QEMU go). */
async function assertNothingRunning(): Promise<void> {
  const left = () => liveProcessesMentioning(microvmHome()).filter((p) => /qemu|virtiofsd|microvm/.test(p.program));
  for (let i = 0; i < 50 && left().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(left(), [], 'no QEMU, virtiofsd or helper of the builder is left');
}

before(async () => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-build-')));
  ws = path.join(tmp, 'ws');
  writeWorkspace();
  registry = await startRegistry(path.join(tmp, 'registry'));
  await pushImage(registry.base, 'library/debian', 'bookworm', debianImage(debianMinbase()));
  process.env.MICROVM_REGISTRY_MIRRORS = `docker.io=${registry.base}`;
});

after(async () => {
  if (savedMirrors === undefined) delete process.env.MICROVM_REGISTRY_MIRRORS;
  else process.env.MICROVM_REGISTRY_MIRRORS = savedMirrors;
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(hostMarker, { force: true });
});

let first: BuiltImage;

test('a two-stage Dockerfile builds in the builder VM; the image boots as its USER with the installed tool', async () => {
  const before = snapshotOf(ws);
  const events: BuildImageProgress[] = [];
  first = await build(events);
  assert.equal(first.cached, false);
  assert.match(first.ref, /^oci:\//);
  const log = logText(events);
  const release = fs.readFileSync(path.join(homePaths.assetsDir(), 'kernel-release'), 'utf8').trim();
  assert.match(
    log,
    new RegExp(`Linux \\S+ ${release.replace(/[.+]/g, '\\$&')} `),
    'RUN uname -a shows the guest kernel',
  );
  if (release !== os.release()) assert.ok(!log.includes(os.release()), 'the host kernel never shows');
  const hostModel = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  const guestModel = /model name\s*:\s*(.*)/.exec(log)?.[1];
  assert.ok(guestModel, 'RUN read /proc/cpuinfo');
  if (process.env.MICROVM_ACCEL !== 'kvm')
    assert.notEqual(guestModel, hostModel, `the guest's CPU (${guestModel}) is not the host's (emulated)`);
  const steps = events.filter((e): e is Extract<BuildImageProgress, { phase: 'step' }> => e.phase === 'step');
  assert.deepEqual(
    steps.filter((s) => s.stage === 2).map((s) => s.line),
    [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    'each STEP names its Dockerfile line',
  );
  assert.match(steps.find((s) => s.line === 8)?.instruction ?? '', /^RUN --mount=type=cache.*apt-get install/);
  assert.match(log, /^escaped-write$/m, "the RUN wrote to the host folder's path: in the VM");
  assert.deepEqual(
    snapshotOf(ws),
    before,
    'the build changed nothing in the folder (RUN writes to its path and through a rw bind mount stay in the VM)',
  );
  assert.ok(!fs.existsSync(hostMarker), `a RUN writing ${hostMarker} did not reach the host`);
  const out = await inImage(
    first.ref,
    'id -un; id -u; jq --version; cat /opt/tool.txt; echo "$GREETING"; ls -a /home/dev/ws; cat /home/dev/ws/app/data.txt; test -e /home/dev/ws/.env && echo LEAKED || echo no-env',
  );
  const lines = out.trim().split('\n');
  assert.equal(lines[0], 'dev');
  assert.equal(lines[1], '1000');
  assert.match(lines[2]!, /^jq-1\.6/);
  assert.equal(lines[3], `built on ${release}`);
  assert.equal(lines[4], 'hello from a build arg');
  assert.ok(out.includes('.dockerignore') && out.includes('first') && out.includes('no-env'), out);
  assert.ok(!out.includes('LEAKED'), '.env (in .dockerignore) is not in the image');
  await assertNothingRunning();
});

test('reopening unchanged is a lookup; editing a file the last COPY uses rebuilds only from that step', async () => {
  assert.ok(first, 'the first build ran');
  const again: BuildImageProgress[] = [];
  const hit = await build(again);
  assert.equal(hit.cached, true);
  assert.equal(hit.digest, first.digest);
  const lookup = again.find((e) => e.phase === 'lookup');
  assert.ok(lookup && lookup.phase === 'lookup' && lookup.cached);
  assert.ok(!again.some((e) => e.phase === 'builder'), 'no builder VM started');
  assert.ok(lookup.ms < 500, `the lookup took ${lookup.ms.toFixed(1)} ms (target 50 ms)`);
  fs.writeFileSync(path.join(ws, 'app/data.txt'), 'second\n');
  const events: BuildImageProgress[] = [];
  const rebuilt = await build(events);
  assert.equal(rebuilt.cached, false);
  assert.notEqual(rebuilt.digest, first.digest);
  const cachedLines = events.flatMap((e) => (e.phase === 'step-cached' && e.line !== undefined ? [e.line] : []));
  assert.deepEqual(
    cachedLines,
    [4, 6, 7, 8, 9, 10, 11, 12, 13, 14],
    'buildah reused every step before the last COPY (apt-get install included)',
  );
  assert.match(logText(events), /STEP 11\/11: COPY --chown=dev:dev \. \/home\/dev\/ws\/\n(?!--> Using cache)/);
  assert.equal((await inImage(rebuilt.ref, 'cat /home/dev/ws/app/data.txt')).trim(), 'second');
  await assertNothingRunning();
});

/** RUN here-documents in each form BuildKit gives them, which buildah 1.28 alone cannot build. */
const HEREDOCS = [
  'FROM debian:bookworm',
  'SHELL ["/bin/bash", "-o", "pipefail", "-c"]',
  'RUN <<EOF',
  'set -e',
  'arr=(one two)',
  'echo "script ${arr[1]} $BASH_VERSION" > /script.txt',
  'EOF',
  'RUN cat <<\'CONF\' > /etc/app.conf && echo "conf written"',
  'home=$HOME',
  'CONF',
  'RUN <<EOT bash',
  'echo "stdin of bash" > /stdin.txt',
  'EOT',
  'RUN <<EOF',
  '#!/usr/bin/perl',
  "open(my $f, '>', '/perl.txt'); print $f \"perl ran\\n\";",
  'EOF',
  'RUN <<-EOF',
  '\techo tabbed > /tabbed.txt',
  '\tEOF',
  "COPY --chmod=755 <<'EOF' /usr/local/bin/hello",
  '#!/bin/sh',
  'echo "hello $1"',
  'EOF',
  'COPY <<robots.txt <<humans.txt /srv/',
  'User-agent: *',
  'robots.txt',
  'Me',
  'humans.txt',
  '',
].join('\n');

test("here-documents build: RUN's script in the stage's shell, a document read by the command, one on stdin, a shebang script; COPY's files", async () => {
  const dir = path.join(tmp, 'heredocs');
  fs.mkdirSync(dir, { recursive: true });
  // A comment of this run after the last step: a new build each run (the result cache would
  // answer without steps), buildah's layer cache still used, no line number moved.
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `${HEREDOCS}# run ${process.pid}-${Date.now()}\n`);
  // An allow-list .dockerignore (nothing by default): the documents' files are copied all the same.
  fs.writeFileSync(path.join(dir, '.dockerignore'), '*\n');
  const events: BuildImageProgress[] = [];
  const built = await buildImage({ context: dir, onProgress: (e) => events.push(e) });
  const steps = events.filter((e): e is Extract<BuildImageProgress, { phase: 'step' }> => e.phase === 'step');
  assert.deepEqual(
    steps.map((s) => s.line),
    [1, 2, 3, 8, 11, 14, 18, 21, 25],
    'each STEP names its line in the Dockerfile as written',
  );
  const out = await inImage(
    built.ref,
    'cat /script.txt /etc/app.conf /stdin.txt /perl.txt /tabbed.txt; hello world; cat /srv/robots.txt /srv/humans.txt',
  );
  const lines = out.trim().split('\n');
  assert.match(lines[0]!, /^script two 5\./, 'the script ran in bash (SHELL), arrays and all');
  assert.equal(lines[1], 'home=$HOME', 'a quoted delimiter: the shell did not expand the document');
  assert.deepEqual(lines.slice(2), ['stdin of bash', 'perl ran', 'tabbed', 'hello world', 'User-agent: *', 'Me']);
  await assertNothingRunning();
});

test('Dockerfile mistakes are refused before any VM, naming the file, the line and the fix', async () => {
  const dir = path.join(tmp, 'bad');
  fs.mkdirSync(dir, { recursive: true });
  const cases: Array<[string, RegExp]> = [
    ['FROM debian:bookworm\nRUN true\nRUNN echo typo\n', /Dockerfile:3: unknown instruction "RUNN"/],
    ['FROM debian:bookworm\nADD <<EOF /a\nhi\nEOF\n', /Dockerfile:2: ADD uses a heredoc.*buildah 1\.28/],
    ['FROM debian:bookworm\nCOPY <<EOF /a\n$HOME\nEOF\n', /Dockerfile:2: the here-document <<EOF holds a \$/],
  ];
  for (const [text, pattern] of cases) {
    fs.writeFileSync(path.join(dir, 'Dockerfile'), text);
    const events: BuildImageProgress[] = [];
    await assert.rejects(
      buildImage({ context: dir, onProgress: (e) => events.push(e) }),
      (err: Error & { code?: string }) => err.code === 'E_DOCKERFILE' && pattern.test(err.message),
    );
    assert.ok(!events.some((e) => e.phase === 'builder'));
  }
  await assert.rejects(
    buildImage({ context: dir, dockerfile: 'missing/Dockerfile' }),
    (err: Error & { code?: string }) =>
      err.code === 'E_DOCKERFILE' &&
      err.message.includes(path.join(dir, 'missing/Dockerfile')) &&
      /does not exist/.test(err.message),
  );
  await assert.rejects(
    buildImage({ context: path.join(dir, 'nope') }),
    (err: Error & { code?: string }) => err.code === 'E_BUILD_CONTEXT',
  );
});

test('an unreachable registry names the FROM line; nothing is left running', async () => {
  const dir = path.join(tmp, 'unreachable');
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    `FROM debian:bookworm AS ok\nFROM 127.0.0.1:${port}/team/nothing:1\nRUN true\n`,
  );
  await assert.rejects(buildImage({ context: dir }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_REGISTRY_UNREACHABLE');
    assert.ok(
      err.message.startsWith(`${path.join(dir, 'Dockerfile')}:2: FROM 127.0.0.1:${port}/team/nothing:1: `),
      err.message,
    );
    return true;
  });
  await assertNothingRunning();
});

test('a failing RUN names its step and line; a cancelled build stops the builder; nothing is left behind', async () => {
  const dir = path.join(tmp, 'failing');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'Dockerfile'),
    'FROM debian:bookworm\nRUN echo before\nRUN echo about to fail && exit 3\n',
  );
  await assert.rejects(buildImage({ context: dir }), (err: unknown) => {
    assert.ok(isMicrovmError(err, 'E_BUILD_FAILED'), String(err));
    assert.equal(err.details?.line, 3);
    assert.match(err.message, /Dockerfile:3: step 3\/3 "RUN echo about to fail && exit 3" failed: .*exit status 3/);
    return true;
  });
  await assertNothingRunning();

  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM debian:bookworm\nRUN echo sleeping && sleep 600\n');
  const controller = new AbortController();
  const started = performance.now();
  await assert.rejects(
    buildImage({
      context: dir,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.phase === 'log' && e.line === 'sleeping') controller.abort();
      },
    }),
    (err: Error & { code?: string }) => err.code === 'E_ABORTED' && err.name === 'AbortError',
  );
  assert.ok(performance.now() - started < 120_000);
  await assertNothingRunning();
  const leftovers = fs.readdirSync(homePaths.builds()).filter((n) => n.startsWith('.tmp-'));
  assert.deepEqual(leftovers, [], 'no temporary build files');
  assert.deepEqual(
    fs.readdirSync(path.join(homePaths.store(), 'tmp')).filter((n) => n.includes(`-${process.pid}-`)),
    [],
    'no partial blobs',
  );
});
