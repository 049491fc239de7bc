import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildBundles, Bundles, CliResult, privateHome, runCli } from './cli-helpers';
import { homePaths } from '../../engine/paths';
import { exitIfLingering } from '../helpers/lingering';

/**
 * A folder with two configurations in subfolders of .devcontainer/: `--config` (relative to
 * the current directory, as the reference CLI takes it) picks one for read-configuration, up
 * and exec; a folder runs one configuration at a time (E_WORKSPACE_CONFIG), and a path that is
 * not a configuration inside the folder is E_CONFIG_PATH before anything starts.
 */
let bundles: Bundles;
let home: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-choice-'));
fs.chmodSync(tmp, 0o755);
const folder = path.join(tmp, 'app');
const previousHome = process.env.MICROVM_HOME;

before(async () => {
  bundles = await buildBundles();
  home = privateHome(['assets', 'images', 'rootfs']);
  process.env.MICROVM_HOME = home;
  for (const name of ['go', 'python']) {
    fs.mkdirSync(path.join(folder, '.devcontainer', name), { recursive: true });
    fs.writeFileSync(
      path.join(folder, '.devcontainer', name, 'devcontainer.json'),
      JSON.stringify({ containerEnv: { WHICH: name } }),
    );
  }
  fs.writeFileSync(path.join(folder, '.devcontainer', 'go', 'other.json'), '{}');
});

after(async () => {
  await runCli(bundles.cli, ['down', '--workspace-folder', folder], {
    env: { MICROVM_HOME: home },
    timeoutMs: 60_000,
  }).catch(() => undefined);
  fs.rmSync(homePaths.suspended(), { recursive: true, force: true });
  if (previousHome === undefined) delete process.env.MICROVM_HOME;
  else process.env.MICROVM_HOME = previousHome;
  fs.rmSync(bundles.dir, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
  exitIfLingering('cli-config-choice.test.ts');
});

/** The CLI run from inside the folder, so --config paths are relative to it. */
const cli = (args: string[]) => runCli(bundles.cli, args, { env: { MICROVM_HOME: home }, cwd: folder });

const PYTHON = '.devcontainer/python/devcontainer.json';
const GO = '.devcontainer/go/devcontainer.json';

function errorLine(result: CliResult, code: string): string {
  assert.notEqual(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  const line = result.stderr.split('\n').find((l) => l.startsWith('microvm: error ['));
  assert.ok(line?.startsWith(`microvm: error [${code}]: `), result.stderr);
  return line ?? '';
}

async function which(config?: string): Promise<CliResult> {
  return cli(['exec', '--workspace-folder', '.', ...(config ? ['--config', config] : []), 'sh', '-c', 'echo "$WHICH"']);
}

test('read-configuration, up and exec use the configuration --config names; another is refused while it runs', async () => {
  const read = await cli(['read-configuration', '--workspace-folder', '.', '--config', PYTHON]);
  assert.equal(read.code, 0, read.stderr);
  const output = JSON.parse(read.stdout.toString());
  assert.equal(output.configuration.configFilePath, path.join(fs.realpathSync(folder), PYTHON));
  assert.deepEqual(output.configuration.containerEnv, { WHICH: 'python' });
  assert.ok(!output.problems.some((p: { code: string }) => p.code === 'other-configurations'));

  const up = await cli(['up', '--workspace-folder', '.', '--config', PYTHON]);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(JSON.parse(up.stdout.toString()).outcome, 'success');
  const ran = await which(PYTHON);
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout.toString(), 'python\n', 'the chosen configuration took effect');
  assert.equal((await which()).stdout.toString(), 'python\n', 'exec without --config attaches to what runs');

  const otherUp = await cli(['up', '--workspace-folder', '.', '--config', GO]);
  assert.match(
    errorLine(otherUp, 'E_WORKSPACE_CONFIG'),
    /runs "\.devcontainer\/python\/devcontainer\.json", not "\.devcontainer\/go\/devcontainer\.json".*stop it first/,
  );
  assert.equal(JSON.parse(otherUp.stdout.toString()).code, 'E_WORKSPACE_CONFIG');
  const defaultUp = await cli(['up', '--workspace-folder', '.']);
  errorLine(defaultUp, 'E_WORKSPACE_CONFIG');
  errorLine(await which(GO), 'E_WORKSPACE_CONFIG');

  const down = await cli(['down', '--workspace-folder', '.']);
  assert.equal(down.code, 0, down.stderr);
  const goUp = await cli(['up', '--workspace-folder', '.', '--config', GO]);
  assert.equal(goUp.code, 0, goUp.stderr);
  assert.equal(
    (await which(GO)).stdout.toString(),
    'go\n',
    'after down, the other configuration runs: no VM of the first reused',
  );
});

test('a --config that is not a configuration file inside the folder is E_CONFIG_PATH, naming the path', async () => {
  const named = await cli(['up', '--workspace-folder', '.', '--config', '.devcontainer/go/other.json']);
  assert.match(
    errorLine(named, 'E_CONFIG_PATH'),
    /other\.json" is not named devcontainer\.json or \.devcontainer\.json; choose a devcontainer\.json/,
  );
  assert.equal(JSON.parse(named.stdout.toString()).code, 'E_CONFIG_PATH');
  const missing = await cli([
    'read-configuration',
    '--workspace-folder',
    '.',
    '--config',
    '.devcontainer/rust/devcontainer.json',
  ]);
  assert.match(errorLine(missing, 'E_CONFIG_PATH'), /rust\/devcontainer\.json" cannot be read \(ENOENT\)/);
  fs.writeFileSync(path.join(tmp, 'devcontainer.json'), '{}');
  const outside = await cli(['exec', '--workspace-folder', '.', '--config', '../devcontainer.json', 'true']);
  assert.match(errorLine(outside, 'E_CONFIG_PATH'), /is outside the folder/);
});
