import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildBundles, Bundles, CliResult, runCli } from './cli-helpers';

/**
 * The CLI's workspace verbs, with the reference devcontainer CLI's names: `microvm build
 * --workspace-folder` makes the image opening makes, `microvm run --workspace-folder` opens the
 * folder as the extension does (hooks, remoteEnv, the workspace folder) and runs a command.
 */
let bundles: Bundles;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-cli-ws-'));
fs.chmodSync(tmp, 0o755);

before(async () => {
  bundles = await buildBundles();
});

after(() => {
  fs.rmSync(bundles.dir, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

const cli = (args: string[], input?: string) => runCli(bundles.cli, args, input === undefined ? {} : { input });

function workspace(name: string, config: Record<string, unknown>): string {
  const folder = path.join(tmp, name);
  fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
  fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), JSON.stringify(config));
  return folder;
}

function engineError(result: CliResult, code: string): string {
  assert.equal(result.code, 125, `exit ${result.code}; stderr: ${result.stderr}`);
  const line = result.stderr.split('\n').find((l) => l.startsWith('microvm: error ['));
  assert.ok(line?.startsWith(`microvm: error [${code}]: `), result.stderr);
  return line ?? '';
}

test('build prints the image as JSON; run runs the hooks once, then the command as the workspace sees it, with stdin, stdout and its exit code', async () => {
  const config = {
    postCreateCommand: 'echo made >> made.txt',
    remoteEnv: { GREETING: 'hi from ${localWorkspaceFolderBasename}' },
  };
  const folder = workspace('app', config);
  const built = await cli(['build', '--workspace-folder', folder]);
  assert.equal(built.code, 0, built.stderr);
  const output = JSON.parse(built.stdout.toString());
  assert.equal(output.outcome, 'success');
  assert.match(output.imageDigest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(!fs.existsSync(path.join(folder, 'made.txt')), 'build runs no hook');

  const ran = await cli([
    'run',
    '--workspace-folder',
    folder,
    '--',
    'sh',
    '-c',
    'cat made.txt; echo "$GREETING"; pwd; exit 3',
  ]);
  assert.equal(ran.code, 3, ran.stderr);
  assert.equal(ran.stdout.toString(), 'made\nhi from app\n/workspaces/app\n');
  assert.match(ran.stderr, /postCreateCommand/, 'hook progress goes to stderr');

  const piped = await cli(['run', '--workspace-folder', folder, '--', 'sh', '-c', 'cat; cat made.txt'], 'from stdin\n');
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stdout.toString(), 'from stdin\nmade\n', 'postCreateCommand ran once across two runs');
});

test('a configuration that changed to take more from this machine is refused until --accept-config-changes says yes', async () => {
  const folder = workspace('grows', { postStartCommand: 'true' });
  assert.equal((await cli(['run', '--workspace-folder', folder, '--', 'true'])).code, 0);
  fs.writeFileSync(
    path.join(folder, '.devcontainer', 'devcontainer.json'),
    JSON.stringify({ postStartCommand: 'true', hostRequirements: { memory: '768mb' } }),
  );
  const refused = await cli(['run', '--workspace-folder', folder, '--', 'true']);
  assert.match(engineError(refused, 'E_CONFIG'), /changed since this folder was last opened.*--accept-config-changes/);
  assert.match(refused.stderr, /hostRequirements/, 'the change is named');
  const accepted = await cli([
    'run',
    '--workspace-folder',
    folder,
    '--accept-config-changes',
    '--',
    'sh',
    '-c',
    'grep MemTotal /proc/meminfo',
  ]);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.ok(Number(/MemTotal:\s+(\d+)/.exec(accepted.stdout.toString())?.[1]) > 600 * 1024, accepted.stdout.toString());
});

test('bad input: every configuration problem listed with its field before any VM; a command without -- is a usage error', async () => {
  const folder = workspace('bad', { image: '/etc', forwardPorts: ['nope'] });
  const result = await cli(['run', '--workspace-folder', folder, '--', 'true']);
  engineError(result, 'E_CONFIG');
  assert.match(
    result.stderr,
    /error: \.devcontainer\/devcontainer\.json: \$\.image: image "\/etc" names a file or folder on this machine/,
  );
  assert.match(
    result.stderr,
    /warning: \.devcontainer\/devcontainer\.json: \$\.forwardPorts\[0\]: .*"nope"/,
    'every problem at once',
  );
  assert.doesNotMatch(result.stderr, /is running under/, 'no VM started');
  const usage = await cli(['run', '--workspace-folder', folder, 'ls']);
  assert.match(engineError(usage, 'E_BAD_OPTION'), /put the command after --/);
});
