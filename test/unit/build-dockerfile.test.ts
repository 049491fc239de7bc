import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { expandVariables } from '../../engine/build/args';
import { isMicrovmError } from '../../engine/errors';
import { lineOfStep, planDockerfile } from '../../engine/build/dockerfile';

const FILE = '/ws/.devcontainer/Dockerfile';

function rejects(text: string, pattern: RegExp, line?: number): void {
  assert.throws(
    () => planDockerfile(text, FILE, {}),
    (err: unknown) => {
      assert.ok(isMicrovmError(err, 'E_DOCKERFILE'), String(err));
      assert.match(err.message, pattern);
      assert.equal(err.details.file, FILE);
      if (line !== undefined) {
        assert.equal(err.details.line, line);
        assert.ok(err.message.startsWith(`${FILE}:${line}: `), err.message);
      }
      return true;
    },
  );
}

test('expandVariables: $X, ${X}, ${X:-default}, ${X:+alt}, escaped dollars, unset is empty', () => {
  const values = new Map([
    ['A', 'debian'],
    ['B', ''],
    ['V', '12'],
  ]);
  assert.equal(expandVariables('$A:${V}', values), 'debian:12');
  assert.equal(expandVariables('${B:-node}:${MISSING:-20}', values), 'node:20');
  assert.equal(expandVariables('x${V:+-slim}${B:+-never}', values), 'x-slim');
  assert.equal(expandVariables('\\$A $NOPE.', values), '$A .');
});

test('FROM images after ARG substitution; stage names and scratch are not images; build args win', () => {
  const text = [
    '# a comment',
    'ARG VARIANT=bookworm',
    'ARG BASE="debian:${VARIANT}"',
    'FROM ${BASE} AS tools',
    'RUN echo tools',
    'FROM scratch AS empty',
    'FROM tools AS again',
    'FROM $BASE',
    'COPY --from=tools /a /a',
    'COPY --from=1 /b /b',
    'COPY --from=busybox:1.36 /bin/busybox /busybox',
    'RUN --mount=type=bind,from=alpine:3,target=/x true',
    'RUN --mount=type=cache,target=/var/cache/apt apt-get update',
  ].join('\n');
  const plan = planDockerfile(text, FILE, {});
  assert.deepEqual(plan.images, [
    { ref: 'debian:bookworm', line: 4, use: 'FROM' },
    { ref: 'busybox:1.36', line: 11, use: 'COPY --from' },
    { ref: 'alpine:3', line: 12, use: 'RUN --mount' },
  ]);
  assert.deepEqual(
    plan.stages.map((s) => [s.name, s.line, s.steps.length]),
    [
      ['tools', 4, 2],
      ['empty', 6, 1],
      ['again', 7, 1],
      [undefined, 8, 6],
    ],
  );
  assert.deepEqual(planDockerfile(text, FILE, { VARIANT: 'trixie' }).images[0]!.ref, 'debian:trixie');
  assert.deepEqual(planDockerfile(text, FILE, { BASE: 'ubuntu:24.04' }).images[0]!.ref, 'ubuntu:24.04');
  assert.deepEqual(planDockerfile('FROM debian:${TARGETARCH}', FILE, {}).images[0]!.ref, 'debian:amd64');
});

test('a multi-line RUN is one step; lineOfStep maps buildah STEP lines back to Dockerfile lines', () => {
  const plan = planDockerfile(
    'FROM debian AS a\nRUN apt-get update && \\\n    apt-get install -y jq\nFROM debian\nRUN false\nRUN false',
    FILE,
    {},
  );
  assert.equal(plan.stages[0]?.steps[1]!.text, 'RUN apt-get update && apt-get install -y jq');
  assert.equal(
    lineOfStep(plan, { stage: 1, stages: 2, step: 2, text: 'RUN apt-get update &&     apt-get install -y jq' }),
    2,
  );
  assert.equal(lineOfStep(plan, { stage: 2, stages: 2, step: 3, text: 'RUN false' }), 6);
  assert.equal(lineOfStep(plan, { stage: 2, stages: 2, step: 1, text: 'FROM debian' }), 4);
  assert.equal(
    lineOfStep(plan, { stage: 1, stages: 1, step: 2, text: 'RUN apt-get update && apt-get install -y jq' }),
    2,
    'a skipped stage: the text decides',
  );
  assert.equal(lineOfStep(plan, { stage: 1, stages: 2, step: 9, text: 'RUN nothing' }), undefined);
  const args = planDockerfile('ARG B=debian\nFROM $B AS x\nCOPY --from=x /a /b', FILE, {});
  assert.equal(
    lineOfStep(args, { step: 1, text: 'FROM debian AS x' }),
    2,
    'ARGs expanded by buildah: the position decides',
  );
  assert.equal(lineOfStep(args, { step: 2, text: 'COPY --from=x /a /b' }), 3);
});

test('what buildah 1.28 cannot build is refused before a VM starts, naming the line and the fix', () => {
  rejects('FROM debian\nRUNN true', /unknown instruction "RUNN"/, 2);
  rejects('FROM debian\nADD <<EOT /a\nhi\nEOT', /ADD uses a heredoc.*put the content in a file/, 2);
  rejects(
    'FROM debian\nCOPY <<EOT /a\n$HOME\nEOT',
    /here-document <<EOT holds a \$.*quote its delimiter \(<<'EOT'\)/,
    2,
  );
  rejects('FROM debian\nRUN <<EOT\necho hi\n', /here-document <<EOT has no line "EOT" that ends it/, 2);
  rejects('FROM debian\nCOPY --link a /a', /COPY --link is not supported.*--from, --chown, --chmod/, 2);
  rejects('FROM debian\nRUN --network=none true', /RUN --network/, 2);
  rejects('ENV A=1\nFROM debian', /ENV comes before the first FROM/, 1);
  rejects('# nothing here\n', /no FROM instruction/);
  rejects('ARG BASE\nFROM $BASE', /expands to nothing/, 2);
  rejects('FROM debian AS a\nFROM debian AS A', /used twice/, 2);
  assert.throws(
    () => planDockerfile('FROM debian AS dev', FILE, {}, 'prod'),
    /target "prod" is not a stage.*choose one of: dev/,
  );
});

test('a syntax directive is a warning: buildah has no BuildKit frontends', () => {
  const plan = planDockerfile('# syntax=docker/dockerfile:1.4\nFROM debian', FILE, {});
  assert.match(plan.warnings[0]!, /syntax=docker\/dockerfile:1\.4.*ignored/);
});

test("RUN here-documents go to buildah 1.28 in exec form with the stage's shell, each line number kept", () => {
  const text = [
    'FROM debian AS base', // 1
    'SHELL ["/bin/bash", "-o", "pipefail", "-c"]',
    'RUN <<EOF', // 3: the document is the script
    'set -e',
    'echo "$HOME" > /a',
    'EOF',
    "RUN --mount=type=cache,target=/c cat <<'X' > /b && echo done", // 7: the shell reads the document
    'line $HOME',
    'X',
    'RUN <<-EOF', // 10: <<- strips leading tabs
    '\techo tabbed',
    '\tEOF',
    'RUN <<EOF', // 13: a shebang: written to a file and executed
    '#!/usr/bin/perl',
    'print "hi";',
    'EOF',
    'FROM base AS two', // 17: the shell of the stage it is built on
    'RUN <<EOF',
    'echo two',
    'EOF',
    'FROM debian', // 21: the default shell again
    'RUN apt-get install \\',
    '  -y jq <<EOF',
    'yes',
    'EOF',
    'RUN echo plain',
  ].join('\n');
  const plan = planDockerfile(text, FILE, {});
  const out = plan.buildText.split('\n');
  assert.equal(out.length, text.split('\n').length, 'the same number of lines');
  const bash = ['/bin/bash', '-o', 'pipefail', '-c'];
  const argv = (line: number, head = 'RUN ') => {
    const at = out[line - 1]!;
    assert.ok(at.startsWith(head), at);
    return JSON.parse(at.slice(head.length)) as string[];
  };
  assert.deepEqual(argv(3), [...bash, 'set -e\necho "$HOME" > /a\n']);
  assert.deepEqual(out.slice(3, 6), ['', '', '']);
  assert.deepEqual(argv(7, 'RUN --mount=type=cache,target=/c '), [
    ...bash,
    "cat <<'X' > /b && echo done\nline $HOME\nX",
  ]);
  assert.deepEqual(argv(10), [...bash, 'echo tabbed\n']);
  const shebang = argv(13);
  assert.deepEqual(shebang.slice(0, 4), bash);
  assert.match(shebang[4]!, /mktemp.*"\$f"/);
  assert.deepEqual(shebang.slice(5), ['heredoc', '#!/usr/bin/perl\nprint "hi";\n']);
  assert.equal(out[16], 'FROM base AS two');
  assert.deepEqual(argv(18), [...bash, 'echo two\n']);
  assert.deepEqual(argv(22), ['/bin/sh', '-c', 'apt-get install   -y jq <<EOF\nyes\nEOF']);
  assert.equal(out[25], 'RUN echo plain');
  // Steps keep their Dockerfile lines, for buildah's STEP lines and error messages.
  assert.deepEqual(
    plan.stages.map((s) => s.steps.map((step) => step.line)),
    [
      [1, 2, 3, 7, 10, 13],
      [17, 18],
      [21, 22, 26],
    ],
  );
});

test('a Dockerfile without here-documents goes to buildah exactly as written', () => {
  const text = 'FROM debian\r\nRUN echo "<<EOF"\r\nRUN ["echo", "<<EOF"]\n';
  assert.equal(planDockerfile(text, FILE, {}).buildText, text);
});

test("COPY here-documents become files of the builder's context, named after their delimiters, that the COPY copies", () => {
  const text = [
    'FROM debian',
    "COPY --chmod=755 <<'EOF' /usr/local/bin/hello",
    '#!/bin/sh',
    'echo "hello $1"',
    'EOF',
    'COPY <<robots.txt <<humans.txt /srv/',
    'User-agent: *',
    'robots.txt',
    'Me',
    'humans.txt',
    'COPY <<-EOF /etc/tabbed',
    '\tindented',
    '\tEOF',
    'COPY a.txt /a.txt',
  ].join('\n');
  const plan = planDockerfile(text, FILE, {});
  const out = plan.buildText.split('\n');
  assert.equal(out.length, text.split('\n').length);
  assert.equal(out[1], 'COPY --chmod=755 .microvm-heredocs/2/EOF /usr/local/bin/hello');
  assert.equal(out[5], 'COPY .microvm-heredocs/6/robots.txt .microvm-heredocs/6/humans.txt /srv/');
  assert.equal(out[10], 'COPY .microvm-heredocs/11/EOF /etc/tabbed');
  assert.equal(out[13], 'COPY a.txt /a.txt');
  assert.deepEqual(plan.generated, [
    { rel: '.microvm-heredocs/2/EOF', content: '#!/bin/sh\necho "hello $1"\n' },
    { rel: '.microvm-heredocs/6/robots.txt', content: 'User-agent: *\n' },
    { rel: '.microvm-heredocs/6/humans.txt', content: 'Me\n' },
    { rel: '.microvm-heredocs/11/EOF', content: 'indented\n' },
  ]);
});
