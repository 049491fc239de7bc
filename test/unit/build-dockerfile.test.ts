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
  rejects('FROM debian\nRUN <<EOT\necho hi\nEOT', /heredoc.*buildah 1\.28/, 2);
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
