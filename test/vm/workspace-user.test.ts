import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMicrovmError, PlanSettings, prepareWorkspace, Session } from '../../engine';
import { homePaths } from '../../engine/paths';
import { gzipLayer, sha256, tarOf } from '../helpers/image-fixtures';
import { gunzipSync } from 'node:zlib';
import { loggingEvents } from '../helpers/session-events';
import { testPlanSettings } from '../helpers/plan-settings';

/**
 * devcontainer.json's users: terminals, hooks and the env probe run as remoteUser, with its
 * home, shell and supplementary groups from the image's own files; the shared folder is
 * owned by that user in the VM, so what it creates belongs to the folder's owner on the
 * host; a user the image lacks is a clear error before any VM boots.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-ws-user-'));
fs.chmodSync(tmp, 0o755);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The host user who owns the folder (the tests run as root; a developer does not). */
const HOST_OWNER = 4242;

/** The default image plus a layer with a `dev` user (uid 1000) in a `tools` group, as an OCI layout, with these config labels. */
function imageWithDevUser(name: string, labels: Record<string, string> = {}): string {
  const dir = path.join(tmp, name);
  fs.cpSync(homePaths.defaultImage(), dir, { recursive: true });
  const blobPath = (digest: string) => path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const readJson = (digest: string) => JSON.parse(fs.readFileSync(blobPath(digest), 'utf8'));
  const write = (data: Buffer) => {
    const digest = sha256(data);
    fs.writeFileSync(blobPath(digest), data);
    return { digest, size: data.length };
  };
  const tar = tarOf([
    { path: 'etc/passwd', mode: 0o644, data: 'root:x:0:0:root:/root:/bin/sh\ndev:x:1000:1000:Dev:/home/dev:/bin/sh\n' },
    { path: 'etc/group', mode: 0o644, data: 'root:x:0:\ndev:x:1000:\ntools:x:1500:dev\n' },
    { path: 'home/dev', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
  ]);
  const layer = gzipLayer(tar);
  write(layer.data);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const manifest = readJson(index.manifests[0].digest);
  const config = readJson(manifest.config.digest);
  config.rootfs.diff_ids.push(sha256(gunzipSync(layer.data)));
  config.config = { ...config.config, Labels: { ...config.config?.Labels, ...labels } };
  manifest.layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
  manifest.config = { ...manifest.config, ...write(Buffer.from(JSON.stringify(config))) };
  index.manifests[0] = { ...index.manifests[0], ...write(Buffer.from(JSON.stringify(manifest))) };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}

const SETTINGS = testPlanSettings({ image: imageWithDevUser('image'), memoryMib: 512 });

function workspace(name: string, config: Record<string, unknown>): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  fs.chownSync(folder, HOST_OWNER, HOST_OWNER);
  return folder;
}

async function open(folder: string, logs: string[], settings: PlanSettings = SETTINGS): Promise<Session> {
  const prepared = await prepareWorkspace({
    folder,
    settings,
    allowLocalEnv: [],
    onConfigChanged: async () => 'apply',
    onOverLimits: async () => true,
  });
  assert.ok(prepared);
  return new Session(prepared.plan, loggingEvents(logs), prepared.lifecycle);
}

/** Everything a pty process prints until it ends. */
async function ptyOutput(session: Session, argv: string[]): Promise<string> {
  const child = session.spawnPty(argv, { rows: 24, cols: 200 });
  let out = '';
  for (let chunk = await child.readStdout(); chunk.length > 0; chunk = await child.readStdout())
    out += chunk.toString('utf8');
  await child.wait();
  return out.replace(/\r/g, '');
}

test("remoteUser: hooks and terminals run as the image's user with its home, shell and groups; what it creates is the folder owner's on the host", async () => {
  const folder = workspace('app', {
    remoteUser: 'dev',
    postCreateCommand: 'echo "$(id -u) $(id -g) $(id -G) $HOME $USER" > hook.txt && mkdir made-by-hook',
  });
  const logs: string[] = [];
  const session = await open(folder, logs);
  try {
    await session.start();
    await session.hooksSettled();
    assert.equal(
      fs.readFileSync(path.join(folder, 'hook.txt'), 'utf8'),
      '1000 1000 1000 1500 /home/dev dev\n',
      logs.join('\n'),
    );
    assert.equal(session.shell, '/bin/sh');
    const terminal = await ptyOutput(session, [
      session.shell,
      '-c',
      'id -un; pwd; touch from-terminal; ls -ln hook.txt | cut -c1-30',
    ]);
    assert.match(terminal, /^dev\n/);
    assert.match(terminal, /\n\/workspaces\/app\n/, 'the terminal opens in the workspace folder');
    assert.match(terminal, /1000 +1000/, "in the VM the folder's files are the remote user's");
    for (const made of ['hook.txt', 'made-by-hook', 'from-terminal']) {
      const stat = fs.statSync(path.join(folder, made));
      assert.deepEqual(
        [stat.uid, stat.gid],
        [HOST_OWNER, HOST_OWNER],
        `${made} belongs to the folder's owner on the host`,
      );
    }
    assert.ok(
      logs.some((l) => l.startsWith('terminals and hooks run as dev (1000:1000, groups 1500)')),
      logs.join('\n'),
    );
    assert.ok(
      !logs.some((l) => l.startsWith('file events:')),
      `the workspace folder's host edits reach the guest's watchers: ${logs.join('\n')}`,
    );
  } finally {
    await session.stop();
  }
});

test('a remoteUser or containerUser the image does not have is a configuration error naming the field, before any VM boots', async () => {
  for (const field of ['remoteUser', 'containerUser']) {
    const folder = workspace(`ghost-${field}`, { [field]: 'ghost' });
    const logs: string[] = [];
    const session = await open(folder, logs);
    try {
      await assert.rejects(
        session.start(),
        (err) =>
          isMicrovmError(err, 'E_CONFIG') &&
          err.message.includes(`devcontainer.json's ${field} "ghost" is not a user of the image`) &&
          /useradd|common-utils/.test(err.message),
      );
      assert.ok(!logs.some((l) => l.startsWith('VM ')), `no VM started: ${logs.join('\n')}`);
    } finally {
      await session.stop();
    }
  }
});

test("remoteEnv null unsets a variable, the image's too, in hooks and terminals; a tmpfs mount is a memory file system of the asked size the user can write", async () => {
  const folder = workspace('env-tmpfs', {
    remoteUser: 'dev',
    containerEnv: { DROP_ME: 'from-the-container', KEEP: 'kept' },
    remoteEnv: { DROP_ME: null, ADDED: '${containerEnv:KEEP}-and-added' },
    mounts: ['type=tmpfs,target=/scratch,tmpfs-size=16m'],
    postCreateCommand: 'echo "drop=${DROP_ME-unset} keep=$KEEP added=$ADDED" > hook-env.txt',
  });
  const logs: string[] = [];
  const session = await open(folder, logs);
  try {
    await session.start();
    await session.hooksSettled();
    assert.equal(
      fs.readFileSync(path.join(folder, 'hook-env.txt'), 'utf8'),
      'drop=unset keep=kept added=kept-and-added\n',
      logs.join('\n'),
    );
    const terminal = await ptyOutput(session, [
      session.shell,
      '-c',
      'echo "drop=${DROP_ME-unset} added=$ADDED"; grep " /scratch " /proc/mounts; stat -c %a /scratch; echo hi > /scratch/f && cat /scratch/f',
    ]);
    assert.match(terminal, /^drop=unset added=kept-and-added\n/);
    assert.match(terminal, /^tmpfs \/scratch tmpfs rw,nosuid,nodev\S*size=16384k/m);
    assert.match(terminal, /^1777$/m, 'world-writable with the sticky bit, as Docker makes a tmpfs');
    assert.match(terminal, /\nhi\n$/, 'the remote user writes the tmpfs');
  } finally {
    await session.stop();
  }
});

test("remoteUser from the image's devcontainer.metadata label: terminals and hooks run as it, the label's hook first", async () => {
  const labelled = imageWithDevUser('labelled-image', {
    'devcontainer.metadata': JSON.stringify([{ remoteUser: 'dev', postCreateCommand: 'id -un > label-hook.txt' }]),
  });
  const folder = workspace('from-label', { postCreateCommand: 'id -un >> label-hook.txt' });
  const logs: string[] = [];
  const session = await open(folder, logs, { ...SETTINGS, image: labelled });
  try {
    await session.start();
    await session.hooksSettled();
    assert.equal(fs.readFileSync(path.join(folder, 'label-hook.txt'), 'utf8'), 'dev\ndev\n', logs.join('\n'));
    assert.match(await ptyOutput(session, [session.shell, '-c', 'id -un']), /^dev\n/);
  } finally {
    await session.stop();
  }
});
