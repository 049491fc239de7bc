import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCompose, LoadComposeOptions } from '../../engine/compose';
import { interpolate, InterpolationError } from '../../engine/compose/interpolate';
import { parsePortEntry } from '../../engine/compose/ports';
import { splitWords } from '../../engine/compose/words';
import { parseDuration } from '../../engine/compose/durations';
import { formatProblem } from '../../engine/devcontainer/problems';

/** A workspace folder with the given files; compose files live in .devcontainer/ as real projects keep them. */
function project(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function load(folder: string, over: Partial<LoadComposeOptions> = {}) {
  return loadCompose({
    folder,
    configDir: path.join(folder, '.devcontainer'),
    files: ['docker-compose.yml'],
    service: 'app',
    env: {},
    allowLocalEnv: [],
    ...over,
  });
}

const codes = (problems: Array<{ code: string }>) => problems.map((p) => p.code);

test('interpolation: every form docker compose knows, nested defaults, $$ and errors', () => {
  const env: Record<string, string> = { SET: 'v', EMPTY: '' };
  const lookup = (n: string) => env[n];
  const errors: InterpolationError[] = [];
  assert.equal(interpolate('$SET ${SET} ${UNSET} x$', lookup), 'v v  x$');
  assert.equal(interpolate('${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d}', lookup), 'd d  d');
  assert.equal(interpolate('${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}', lookup), 'alt  alt ');
  assert.equal(interpolate('${UNSET:-${SET}-x}', lookup), 'v-x', 'a default may hold a variable');
  assert.equal(interpolate('$$HOME $${SET}', lookup), '$HOME ${SET}');
  assert.equal(interpolate('${EMPTY:?must be set}', lookup, errors), '');
  assert.equal(interpolate('${SET?}', lookup, errors), 'v');
  interpolate('${1BAD} ${SET/x} ${OPEN', lookup, errors);
  assert.deepEqual(
    errors.map((e) => e.name),
    ['EMPTY', '1BAD', 'SET', '${OPEN'],
  );
  assert.match(errors[0]!.message, /EMPTY is required: must be set/);
});

test('ports, durations and command strings parse as docker compose reads them', () => {
  assert.deepEqual(parsePortEntry('3000'), { ports: [{ target: 3000, protocol: 'tcp' }] });
  assert.deepEqual(parsePortEntry('127.0.0.1:5433:5432'), {
    ports: [{ target: 5432, protocol: 'tcp', published: 5433 }],
    hostIp: '127.0.0.1',
  });
  assert.deepEqual(parsePortEntry('[::1]:80:8080/tcp'), {
    ports: [{ target: 8080, protocol: 'tcp', published: 80 }],
    hostIp: '::1',
  });
  assert.deepEqual(parsePortEntry('9000-9001:8000-8001'), {
    ports: [
      { target: 8000, protocol: 'tcp', published: 9000 },
      { target: 8001, protocol: 'tcp', published: 9001 },
    ],
  });
  assert.deepEqual(parsePortEntry({ target: 6379, published: '6380' }), {
    ports: [{ target: 6379, protocol: 'tcp', published: 6380 }],
  });
  assert.ok('error' in parsePortEntry('1-65535'), 'a huge range is refused');
  assert.ok('error' in parsePortEntry('70000'));
  assert.ok('error' in parsePortEntry('80:90:100:110'));
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('10'), undefined, 'a duration needs a unit');
  assert.deepEqual(splitWords(`sh -c 'echo "a b"; exit 0' "x\\"y" a\\ b`), [
    'sh',
    '-c',
    'echo "a b"; exit 0',
    'x"y',
    'a b',
  ]);
  assert.deepEqual(splitWords('  rails   server -b 0.0.0.0 '), ['rails', 'server', '-b', '0.0.0.0']);
});

test('a Rails-style project: app built from a Dockerfile, postgres and redis with health checks, .env interpolation', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
x-env: &env
  RAILS_ENV: development
  DATABASE_URL: postgres://postgres:\${POSTGRES_PASSWORD:-postgres}@db:5432/app
services:
  app:
    build:
      context: ..
      dockerfile: .devcontainer/Dockerfile
      args:
        RUBY_VERSION: "\${RUBY_VERSION:-3.3}"
    volumes:
      - ../..:/workspaces:cached
      - bundle:/usr/local/bundle
    command: sleep infinity
    environment:
      <<: *env
      REDIS_URL: redis://redis:6379/1
    depends_on:
      db:
        condition: service_healthy
      redis:
        condition: service_started
  db:
    image: postgres:16
    restart: unless-stopped
    environment:
      POSTGRES_PASSWORD: \${POSTGRES_PASSWORD:-postgres}
    volumes:
      - postgres-data:/var/lib/postgresql/data
    ports: ["5432"]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 5s
      timeout: 3s
      retries: 10
  redis:
    image: redis:7
    expose: ["6379"]
volumes:
  bundle:
  postgres-data:
`,
    '.devcontainer/.env': 'POSTGRES_PASSWORD=s3cret\nRUBY_VERSION=3.2\n',
    '.devcontainer/Dockerfile': 'FROM ruby\n',
  });
  const out = load(folder);
  const app = out.project?.services.app;
  assert.ok(app, JSON.stringify(out.problems));
  assert.deepEqual(out.start, ['db', 'redis', 'app'], 'dependencies start first');
  assert.equal(app.build?.context, folder);
  assert.equal(app.build?.dockerfile, '.devcontainer/Dockerfile');
  assert.deepEqual(app.build?.args, { RUBY_VERSION: '3.2' });
  assert.deepEqual(app.command, ['sleep', 'infinity']);
  assert.equal(
    app.environment.DATABASE_URL,
    'postgres://postgres:s3cret@db:5432/app',
    'merge keys and .env interpolation',
  );
  assert.equal(app.dependsOn.db!.condition, 'service_healthy');
  const db = out.project?.services.db;
  assert.deepEqual(db?.healthcheck, {
    test: ['/bin/sh', '-c', 'pg_isready -U postgres'],
    intervalMs: 5000,
    timeoutMs: 3000,
    retries: 10,
    startPeriodMs: 0,
    startIntervalMs: 5000,
  });
  assert.deepEqual(db?.volumes, [
    { type: 'volume', source: 'postgres-data', target: '/var/lib/postgresql/data', readOnly: false },
  ]);
  assert.deepEqual(out.project?.services.redis!.expose, [6379]);
  assert.equal(out.project?.services.redis.network, undefined);
  assert.deepEqual(out.project?.volumes, ['bundle', 'postgres-data']);
  // ../.. from .devcontainer is the folder's parent (the templates' pattern): the folder alone is mounted where it would be.
  assert.deepEqual(app.volumes[0], {
    type: 'bind',
    source: folder,
    target: `/workspaces/${path.basename(folder)}`,
    readOnly: false,
  });
  const parent = out.problems.find((p) => p.code === 'compose-bind-parent');
  assert.equal(parent?.file, path.join('.devcontainer', 'docker-compose.yml'));
  assert.equal(parent?.path, 'services.app.volumes[0]');
  assert.ok(codes(out.problems).includes('compose-unsupported'), 'restart is reported');
  assert.ok(!out.problems.some((p) => p.severity === 'error'), JSON.stringify(out.problems));
});

test('several files merge as docker compose -f a -f b does, with !reset and !override', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app:
    image: node:20
    command: ["npm", "start"]
    environment: ["A=1", "B=2"]
    ports: ["3000:3000"]
    volumes: ["..:/workspace", "cache:/cache"]
    labels: {x: y}
  db:
    image: postgres
    ports: ["5432:5432"]
`,
    '.devcontainer/docker-compose.dev.yml': `
services:
  app:
    command: sleep infinity
    environment:
      B: "20"
      C: "3"
    ports: ["9229:9229"]
    volumes: ["other:/cache"]
    labels: !reset {}
  db:
    ports: !override ["5433:5432"]
`,
  });
  const out = load(folder, { files: ['docker-compose.yml', 'docker-compose.dev.yml'] });
  const app = out.project?.services.app;
  assert.ok(app, JSON.stringify(out.problems));
  assert.deepEqual(app.command, ['sleep', 'infinity'], 'command is replaced');
  assert.deepEqual(app.environment, { A: '1', B: '20', C: '3' }, 'environment merges by key across list and map forms');
  assert.deepEqual(
    app.ports.map((p) => p.target),
    [3000, 9229],
    'ports append',
  );
  assert.deepEqual(
    app.volumes.map((v) => v.target),
    ['/workspace', '/cache'],
    'volumes merge by target',
  );
  assert.equal((app.volumes[1] as { source?: string }).source, 'other');
  assert.equal(app.volumes[0]!.type, 'bind');
  assert.ok(!out.problems.some((p) => p.path === 'services.app.labels'), 'a !reset key is gone');
  assert.deepEqual(out.project?.services.db!.ports, [{ target: 5432, protocol: 'tcp', published: 5433 }]);
});

test('profiles and runServices decide what starts; dependencies come along', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app: { image: a, depends_on: [queue], network_mode: "service:queue" }
  queue: { image: q, profiles: [workers] }
  worker: { image: w, profiles: [workers] }
  docs: { image: d, network_mode: "service:worker" }
`,
  });
  assert.deepEqual(
    load(folder).start,
    ['queue', 'app', 'worker', 'docs'],
    'profiled services start only as dependencies (network_mode service: is one)',
  );
  assert.deepEqual(load(folder).project?.services.app!.network, { mode: 'service', service: 'queue' });
  assert.deepEqual(
    load(folder, { runServices: [] }).start,
    ['queue', 'app'],
    'an empty runServices starts the primary service only',
  );
  assert.deepEqual(
    load(folder, { runServices: ['worker'] }).start,
    ['worker', 'queue', 'app'],
    'a named service starts despite its profile',
  );
  fs.writeFileSync(path.join(folder, '.devcontainer/.env'), 'COMPOSE_PROFILES=workers\n');
  assert.deepEqual(load(folder).start, ['queue', 'app', 'worker', 'docs'], 'COMPOSE_PROFILES in .env enables them');
  assert.deepEqual(load(folder, { runServices: ['docs'] }).start, ['worker', 'docs', 'queue', 'app']);
});

test('host variables reach the project only when allowed; env files outside the folder are not read', () => {
  const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'secret-'));
  fs.writeFileSync(path.join(secretDir, 'creds.env'), 'AWS_SECRET=leak\n');
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app:
    image: "node:\${NODE_VERSION:-20}"
    env_file: ["${path.join(secretDir, 'creds.env')}", {path: ./missing.env, required: false}, ./app.env]
    environment:
      TOKEN: \${GITHUB_TOKEN}
      USER_NAME:
      ALLOWED:
`,
    '.devcontainer/app.env': 'FROM_FILE=1\n# comment\nQUOTED="a b"\n',
  });
  const env = { GITHUB_TOKEN: 'ghp_secret', USER_NAME: 'me', ALLOWED: 'yes', NODE_VERSION: '22' };
  const out = load(folder, { env, allowLocalEnv: ['ALLOWED', 'NODE_VERSION'] });
  const app = out.project?.services.app;
  assert.ok(app, JSON.stringify(out.problems));
  assert.equal(app.image, 'node:22');
  assert.deepEqual(app.environment, { FROM_FILE: '1', QUOTED: 'a b', TOKEN: '', ALLOWED: 'yes' });
  assert.ok(
    !JSON.stringify(out.project).includes('ghp_secret') && !JSON.stringify(out.project).includes('leak'),
    'no host secret in the project',
  );
  const byCode = codes(out.problems);
  assert.ok(byCode.includes('compose-env-not-passed'), 'the refused variables are reported');
  // The fix names the setting the extension reads (microvm.localEnv.allow) and the flag with the variable.
  for (const refused of out.problems.filter((p) => p.code === 'compose-env-not-passed'))
    assert.match(
      refused.consequence ?? '',
      /microvm\.localEnv\.allow setting or --allow-local-env (GITHUB_TOKEN|USER_NAME)\b/,
    );
  const envFile = out.problems.find((p) => p.code === 'compose-env-file');
  assert.match(envFile?.consequence ?? '', /outside the folder/);
  assert.ok(
    out.problems.every((p) => !/ghp_secret/.test(formatProblem('devcontainer.json', p))),
    'no problem quotes a secret',
  );
});

test('every problem at once, each naming file, path and consequence; the service key refused when undefined', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
version: "3.8"
services:
  app:
    build: { context: ../.., dockerfile: Dockerfile }
    network_mode: host
    privileged: true
    devices: ["/dev/kvm:/dev/kvm"]
    volumes: ["/var/run/docker.sock:/var/run/docker.sock", "data:relative"]
    ports: ["53:53/udp", "abc"]
    healthcheck: { test: "true", interval: 10 }
    colour: blue
    depends_on: [ghost]
  other:
    image: x
    depends_on: [third]
  third:
    image: y
    depends_on: [other]
secrets:
  token: { file: ~/.token }
`,
  });
  const out = load(folder);
  const byCode = codes(out.problems);
  for (const code of [
    'compose-build-context',
    'compose-unsupported',
    'compose-bind-outside-folder',
    'compose-volume',
    'compose-port-udp',
    'compose-port',
    'compose-duration',
    'compose-unknown-key',
    'compose-dependency',
    'compose-dependency-cycle',
  ]) {
    assert.ok(byCode.includes(code), `${code} in ${byCode.join(', ')}`);
  }
  for (const p of out.problems) {
    assert.ok(p.file && p.path && p.message, JSON.stringify(p));
    if (p.severity !== 'info') assert.ok(p.consequence, `a consequence for ${p.code}`);
  }
  const docker = out.problems.find((p) => p.code === 'compose-bind-outside-folder');
  assert.match(docker?.consequence ?? '', /Docker socket/);
  assert.equal(
    load(folder, { service: 'nope' }).problems.find((p) => p.code === 'compose-no-service')?.severity,
    'error',
  );
});

test('hostile input: syntax errors name the line, alias bombs stop, files outside the folder and huge files are refused', () => {
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 8; i++)
    bomb.push(
      `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(96 + i)}`)
        .join(',')}]`,
    );
  const folder = project({
    '.devcontainer/docker-compose.yml': 'services:\n  app:\n    image: [unclosed\n',
    '.devcontainer/bomb.yml': `${bomb.join('\n')}\nservices: {app: {image: x}}\n`,
    '.devcontainer/big.yml': `# ${'x'.repeat(1024 * 1024 + 10)}\n`,
  });
  const syntax = load(folder);
  assert.equal(syntax.problems[0]!.code, 'compose-syntax');
  assert.match(syntax.problems[0]!.path, /^line \d+, column \d+$/);
  const bombed = load(folder, { files: ['bomb.yml'] });
  assert.equal(bombed.project, undefined);
  assert.equal(bombed.problems[0]!.code, 'compose-syntax');
  assert.match(load(folder, { files: ['big.yml'] }).problems[0]!.message, /more than/);
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'elsewhere-'));
  fs.writeFileSync(path.join(outside, 'c.yml'), 'services: {app: {image: x}}\n');
  fs.symlinkSync(path.join(outside, 'c.yml'), path.join(folder, '.devcontainer', 'link.yml'));
  assert.match(load(folder, { files: ['link.yml'] }).problems[0]!.message, /outside the workspace folder/);
  assert.match(
    load(folder, { files: [path.join(outside, 'c.yml')] }).problems[0]!.message,
    /outside the workspace folder/,
  );
});

test('hostile input: a link in the folder to a host folder is neither bound nor built from (binds, contexts, Dockerfiles judged by their real paths)', () => {
  const home = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'host-home-')));
  fs.mkdirSync(path.join(home, '.ssh'));
  fs.writeFileSync(path.join(home, '.ssh', 'id_rsa'), 'PRIVATE KEY\n');
  fs.writeFileSync(path.join(home, 'Dockerfile'), 'FROM alpine\nCOPY .ssh /k\n');
  const folder = fs.realpathSync(
    project({
      '.devcontainer/docker-compose.yml': `
services:
  app:
    image: alpine
    volumes:
      - ../homelink:/secrets
      - ../homelink/.ssh/new:/later
      - {type: bind, source: ../homelink, target: /long}
      - ./inside:/fine
  db:
    build: ../homelink
    volumes: ["../homelink:/x"]
  web:
    build: {context: .., dockerfile: dflink/Dockerfile}
`,
      '.devcontainer/inside/keep': '',
      Dockerfile: 'FROM alpine\n',
    }),
  );
  fs.symlinkSync(home, path.join(folder, 'homelink'));
  fs.symlinkSync(home, path.join(folder, 'dflink'));
  const out = load(folder, { runServices: ['app', 'db', 'web'] });
  const binds = Object.values(out.project?.services ?? {}).flatMap((s) =>
    s.volumes.flatMap((v) => (v.type === 'bind' ? [v.source] : [])),
  );
  assert.deepEqual(binds, [path.join(folder, '.devcontainer', 'inside')], 'only the bind that stays in the folder');
  const byCode = codes(out.problems);
  assert.equal(byCode.filter((c) => c === 'compose-bind-outside-folder').length, 4, JSON.stringify(out.problems));
  assert.ok(byCode.includes('compose-build-context'), 'the linked build context is refused');
  assert.ok(byCode.includes('compose-build-dockerfile'), 'the linked Dockerfile is refused');
  const context = out.problems.find((p) => p.code === 'compose-build-context');
  assert.match(context?.message ?? '', /outside the workspace folder/);
});

test("platform: an image service's platform is read as docker names it; a built service's is reported", () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app:
    image: debian:12
    platform: linux/aarch64
  db:
    image: postgres:16
    platform: linux/
  worker:
    build: { context: .. }
    platform: linux/arm64
`,
    Dockerfile: 'FROM debian:12\n',
  });
  const loaded = load(folder, { runServices: ['app', 'db', 'worker'] });
  assert.equal(loaded.project?.services.app?.platform, 'linux/arm64');
  assert.equal(loaded.project?.services.db?.platform, undefined);
  assert.equal(loaded.project?.services.worker?.platform, undefined);
  const messages = loaded.problems.filter((p) => p.code === 'compose-platform').map((p) => p.message);
  assert.equal(messages.length, 2, messages.join('\n'));
  assert.match(messages.join('\n'), /platform is "linux\/", not OS\/ARCH/);
  assert.match(messages.join('\n'), /platform "linux\/arm64" is set on a service that is built/);
});

test('tmpfs: the service key (a path or a list, with size=) and volumes of type tmpfs reach the service; bad entries are reported', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app:
    image: node
  db:
    image: postgres
    tmpfs: ["/run", "/scratch:size=16m,mode=1777", "/bytes:size=100000000", "/odd:size=lots", "relative", 3, "/"]
    volumes:
      - { type: tmpfs, target: /cache, tmpfs: { size: 33554432 } }
      - { type: tmpfs, target: /sized, tmpfs: { size: 8m } }
  one:
    image: redis
    tmpfs: /tmp
`,
  });
  const out = load(folder, { runServices: ['app', 'db', 'one'] });
  assert.deepEqual(out.project?.services.db!.tmpfs, [
    { target: '/cache', sizeMib: 32 },
    { target: '/sized', sizeMib: 8 },
    { target: '/run' },
    { target: '/scratch', sizeMib: 16 },
    { target: '/bytes', sizeMib: 96 },
    { target: '/odd' },
  ]);
  assert.deepEqual(out.project?.services.db!.volumes, [], 'a tmpfs volume is not a disk');
  assert.deepEqual(out.project?.services.one!.tmpfs, [{ target: '/tmp' }]);
  const tmpfs = out.problems.filter((p) => p.code === 'compose-tmpfs');
  assert.deepEqual(
    tmpfs.map((p) => p.path),
    ['services.db.tmpfs[3]', 'services.db.tmpfs[4]', 'services.db.tmpfs[5]', 'services.db.tmpfs[6]'],
  );
  assert.match(tmpfs[0]!.consequence ?? '', /\/odd is mounted with the kernel's default size/);
  assert.ok(tmpfs.every((p) => p.file === '.devcontainer/docker-compose.yml' && p.consequence));
});

test("ports of a service other than the workspace's are not published: a warning names the file, service, values and forwardPorts as the fix", () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app:
    image: node
    ports: ["3000:3000"]
  db:
    image: postgres
    ports: ["5433:5432", "9187"]
  cache:
    image: redis
    profiles: [extra]
    ports: ["6379:6379"]
`,
  });
  const out = load(folder);
  const warned = out.problems.filter((p) => p.code === 'compose-service-ports');
  assert.equal(warned.length, 1, 'not for the primary, nor for a service that does not start');
  const [p] = warned;
  assert.equal(p!.severity, 'warning');
  assert.equal(p!.file, '.devcontainer/docker-compose.yml');
  assert.equal(p!.path, 'services.db.ports');
  assert.match(p!.message, /ports 5433:5432, 9187 of service "db"/);
  assert.match(p!.consequence ?? '', /not published/);
  assert.match(p!.consequence ?? '', /add "db:5432", "db:9187" to forwardPorts/);
});

test('include: included projects join, their relative paths and .env are their own; a clash, a missing or outside file is an error', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
name: app-dev
include:
  - ../infra/compose.yaml
  - path: [../tools/a.yaml, ../tools/b.yaml]
    project_directory: ../tools/ctx
services:
  app:
    image: node
    depends_on: [db, tool]
`,
    'infra/compose.yaml': `
name: infra
include: [nested.yaml]
services:
  db:
    image: "postgres:\${PG:-15}"
    volumes: ["./init:/docker-entrypoint-initdb.d", "pgdata:/var/lib/postgresql/data"]
volumes:
  pgdata:
`,
    'infra/.env': 'PG=16\n',
    'infra/init/x.sql': '',
    'infra/nested.yaml': 'services:\n  cache:\n    image: redis\n    build: ./cache\n',
    'infra/cache/Dockerfile': 'FROM redis\n',
    'tools/a.yaml': 'services:\n  tool:\n    build: .\n',
    'tools/b.yaml': 'services:\n  tool:\n    environment: [B=1]\n',
    'tools/ctx/Dockerfile': 'FROM debian\n',
  });
  const out = load(folder);
  assert.deepEqual(
    out.problems.filter((p) => p.severity !== 'info'),
    [],
  );
  const services = out.project!.services;
  assert.equal(out.project!.name, 'app-dev', 'an included project does not rename the project');
  assert.deepEqual(Object.keys(services).sort(), ['app', 'cache', 'db', 'tool']);
  assert.equal(services.db!.image, 'postgres:16', "interpolated with the included project's .env");
  assert.equal(services.db!.volumes[0]!.source, path.join(folder, 'infra', 'init'), 'relative to the included file');
  assert.equal(services.cache!.build?.context, path.join(folder, 'infra', 'cache'));
  assert.equal(services.tool!.build?.context, path.join(folder, 'tools', 'ctx'), 'project_directory');
  assert.deepEqual(services.tool!.environment, { B: '1' }, 'the paths of one entry merge as -f does');
  assert.ok(out.project!.volumes.includes('pgdata'));

  const outside = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'elsewhere-')), 'compose.yaml');
  fs.writeFileSync(outside, 'services:\n  spy:\n    image: alpine\n');
  const bad = project({
    '.devcontainer/docker-compose.yml': `
include: [../db.yaml, ../missing.yaml, "${outside}", {path: 3}]
services:
  app: {image: node}
  db: {image: mysql}
`,
    'db.yaml': 'services:\n  db:\n    image: postgres\n',
  });
  const problems = load(bad).problems.filter((p) => p.severity === 'error');
  assert.deepEqual(
    problems.map((p) => [p.code, p.file, p.path]),
    [
      ['compose-file', '.devcontainer/docker-compose.yml', 'include[1]'],
      ['compose-file', '.devcontainer/docker-compose.yml', 'include[2]'],
      ['compose-include', '.devcontainer/docker-compose.yml', 'include[3]'],
      ['compose-include-conflict', '.devcontainer/docker-compose.yml', 'services.db'],
    ],
  );
  assert.match(problems[1]!.message, /outside the workspace folder/);
  assert.match(problems[3]!.message, /"db" is defined here and in db\.yaml, which include brings in/);
});

test('extends: a base in the same file or another one, followed to its own base, merged by the -f rules; its relative paths start at its file', () => {
  const folder = project({
    '.devcontainer/docker-compose.yml': `
services:
  app:
    extends: {file: ../common/services.yml, service: web}
    environment: [ROLE=app]
    volumes: ["..:/workspace"]
  worker:
    extends: app
    command: ["npm", "run", "worker"]
    environment: {ROLE: worker}
`,
    'common/services.yml': `
services:
  base:
    image: node:22
    env_file: ./common.env
    environment: {A: "1", ROLE: base}
  web:
    extends: base
    build: ./web
    volumes: ["./data:/data"]
`,
    'common/common.env': 'FROM_ENV_FILE=1\n',
    'common/web/Dockerfile': 'FROM node\n',
    'common/data/x': '',
  });
  const out = load(folder);
  assert.deepEqual(
    out.problems.filter((p) => p.severity !== 'info'),
    [],
  );
  const { app, worker } = out.project!.services;
  assert.equal(app!.build?.context, path.join(folder, 'common', 'web'), "relative to the base's file");
  assert.deepEqual(app!.environment, { FROM_ENV_FILE: '1', A: '1', ROLE: 'app' });
  assert.deepEqual(
    app!.volumes.map((v) => [v.type, v.target]),
    [
      ['bind', '/data'],
      ['bind', '/workspace'],
    ],
  );
  assert.equal(app!.volumes[0]!.source, path.join(folder, 'common', 'data'));
  assert.deepEqual(worker!.environment, { FROM_ENV_FILE: '1', A: '1', ROLE: 'worker' });
  assert.deepEqual(worker!.command, ['npm', 'run', 'worker']);

  const bad = project({
    '.devcontainer/docker-compose.yml': `
services:
  app: {image: node}
  a: {extends: b}
  b: {extends: a}
  c: {extends: nope}
  d: {extends: {file: ../missing.yml, service: x}}
  e: {extends: {service: 3}}
`,
  });
  const problems = load(bad).problems.filter((p) => p.code === 'compose-extends' || p.code === 'compose-file');
  assert.deepEqual(
    problems.map((p) => [p.code, p.path]),
    [
      ['compose-extends', 'services.a.extends'],
      ['compose-extends', 'services.b.extends'],
      ['compose-extends', 'services.c.extends'],
      ['compose-file', 'services.d.extends'],
      ['compose-extends', 'services.e.extends'],
    ],
  );
  assert.match(problems[2]!.message, /extends "nope", which \.devcontainer\/docker-compose\.yml does not define/);
});
