import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * `microvm ls --json` shows what a workspace record holds (issue 17: id, configuration digest,
 * the container's digests and hooks done, volumes, the last suspend), with no supervisor
 * running, and skips a damaged record with a note.
 */
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-ls-'));

after(() => fs.rmSync(home, { recursive: true, force: true }));

/** Runs `microvm ls ARGS` (the command's function, in a child: the test runner owns this process's stdout). */
function ls(args: string[]): { code: number; stdout: string; stderr: string } {
  const script = `require(${JSON.stringify(path.join(__dirname, '../../engine/cli/workspace-manage.ts'))}).lsCommand(${JSON.stringify(args)}).then((code) => { process.exitCode = code; })`;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, MICROVM_HOME: home },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

test('ls --json lists each record with its digests, hooks done, disks and last suspend; a damaged record is skipped', () => {
  const workspaces = path.join(home, 'workspaces');
  const volumes = path.join(home, 'volumes');
  fs.mkdirSync(workspaces, { recursive: true });
  fs.mkdirSync(volumes, { recursive: true });
  const id = '0123456789abcdef';
  fs.writeFileSync(
    path.join(workspaces, 'a.json'),
    JSON.stringify({
      version: 1,
      folder: '/src/app',
      id,
      createdAt: '2026-12-01T00:00:00.000Z',
      config: { file: '/src/app/.devcontainer/devcontainer.json', digest: 'cfg123', accepted: {} },
      container: {
        inputs: 'in456',
        createdAt: '2026-12-01T00:00:01.000Z',
        hooksDone: ['onCreateCommand', 'postCreateCommand'],
        image: 'sha256:img',
        contentDigest: 'lock789',
      },
      suspended: { key: 'k', savedAt: '2026-12-02T00:00:00.000Z', disks: [] },
    }),
  );
  fs.writeFileSync(
    path.join(workspaces, 'b.json'),
    JSON.stringify({ version: 1, folder: '/src/bare', id: 'fedcba9876543210', createdAt: 'x' }),
  );
  fs.writeFileSync(path.join(workspaces, 'c.json'), '{ not json');
  for (const disk of [`ws-${id}-node_modules.ext4`, `wsroot-${id}.ext4`, 'ws-ffffffffffffffff-other.ext4'])
    fs.writeFileSync(path.join(volumes, disk), '');

  const { code, stdout, stderr } = ls(['--json']);
  assert.equal(code, 0);
  assert.match(stderr, /skipping the damaged workspace record .*c\.json/);
  const listed = JSON.parse(stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(listed, [
    {
      folder: '/src/app',
      id,
      state: 'suspended',
      forwards: [],
      processes: 0,
      configDigest: 'cfg123',
      container: {
        inputs: 'in456',
        createdAt: '2026-12-01T00:00:01.000Z',
        hooksDone: ['onCreateCommand', 'postCreateCommand'],
        image: 'sha256:img',
        contentDigest: 'lock789',
      },
      volumes: [`ws-${id}-node_modules`, `wsroot-${id}`],
      suspendedAt: '2026-12-02T00:00:00.000Z',
    },
    { folder: '/src/bare', id: 'fedcba9876543210', state: 'stopped', forwards: [], processes: 0, volumes: [] },
  ]);
});
