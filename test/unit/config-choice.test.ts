import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMicrovmError } from '../../engine';
import { resolveConfig } from '../../engine/devcontainer';
import { chosenConfigFile, listConfigFiles, readConfigFile } from '../../engine/devcontainer/locate';
import { parseWorkspaceFlags } from '../../engine/cli/workspace-args';
import { configMismatch, wantedConfigFile } from '../../engine/workspace/config-choice';
import { withContainer, withImage, WorkspaceRecord } from '../../engine/workspace/record';

function withFolder(fn: (folder: string, dir: string) => void): void {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-choice-')));
  const folder = path.join(dir, 'project');
  fs.mkdirSync(folder);
  try {
    fn(folder, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function write(folder: string, file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(folder, file)), { recursive: true });
  fs.writeFileSync(path.join(folder, file), text);
}

function refused(code: string, pattern: RegExp) {
  return (err: unknown) => isMicrovmError(err) && err.code === code && pattern.test(err.message);
}

test("every configuration is listed in the spec's order: .devcontainer/devcontainer.json, .devcontainer.json, then subfolders by name", () =>
  withFolder((folder) => {
    assert.deepEqual(listConfigFiles(folder), []);
    write(folder, '.devcontainer/python/devcontainer.json', '{}');
    write(folder, '.devcontainer/go/devcontainer.json', '{}');
    write(folder, '.devcontainer/notes/README.md', 'no configuration here');
    write(folder, '.devcontainer.json', '{}');
    write(folder, '.devcontainer/devcontainer.json', '{}');
    assert.deepEqual(listConfigFiles(folder), [
      '.devcontainer/devcontainer.json',
      '.devcontainer.json',
      '.devcontainer/go/devcontainer.json',
      '.devcontainer/python/devcontainer.json',
    ]);
  }));

test('a chosen configuration is read instead of the first, with no other-configurations warning; its paths start at its folder', () =>
  withFolder((folder) => {
    write(folder, '.devcontainer/go/devcontainer.json', '{"image":"golang","containerEnv":{"WHICH":"go"}}');
    write(folder, '.devcontainer/python/devcontainer.json', '{"image":"python","containerEnv":{"WHICH":"python"}}');
    assert.equal(readConfigFile(folder)?.file, '.devcontainer/go/devcontainer.json');
    const chosen = path.join(folder, '.devcontainer/python/devcontainer.json');
    const file = readConfigFile(folder, chosen);
    assert.equal(file?.file, '.devcontainer/python/devcontainer.json');
    assert.equal(file?.others, undefined);
    const resolved = resolveConfig({ folder, env: {}, configFile: chosen });
    assert.equal(resolved.config.containerEnv.WHICH, 'python');
    assert.equal(resolved.configPath, chosen);
    assert.equal(
      resolved.problems.find((p) => p.code === 'other-configurations'),
      undefined,
    );
    // Without a choice, the warning stays as it was.
    assert.ok(resolveConfig({ folder, env: {} }).problems.some((p) => p.code === 'other-configurations'));
    assert.equal(
      chosenConfigFile(folder, '.devcontainer/python/devcontainer.json'),
      file?.file,
      'relative to the folder',
    );
  }));

test('a chosen path must be a regular file inside the folder named devcontainer.json or .devcontainer.json (E_CONFIG_PATH)', () =>
  withFolder((folder, dir) => {
    write(folder, '.devcontainer/a/devcontainer.json', '{}');
    write(folder, '.devcontainer/a/other.json', '{}');
    fs.mkdirSync(path.join(folder, 'dir/devcontainer.json'), { recursive: true });
    write(dir, 'elsewhere/devcontainer.json', '{"containerEnv":{"TOKEN":"secret"}}');
    fs.mkdirSync(path.join(folder, '.devcontainer/out'));
    fs.symlinkSync(
      path.join(dir, 'elsewhere/devcontainer.json'),
      path.join(folder, '.devcontainer/out/devcontainer.json'),
    );
    fs.mkdirSync(path.join(folder, '.devcontainer/in'));
    fs.symlinkSync('../a/devcontainer.json', path.join(folder, '.devcontainer/in/devcontainer.json'));

    const cases: Array<[string, RegExp]> = [
      [
        path.join(folder, '.devcontainer/a/other.json'),
        /other\.json" is not named devcontainer\.json or \.devcontainer\.json; choose/,
      ],
      [
        path.join(folder, '.devcontainer/b/devcontainer.json'),
        /b\/devcontainer\.json" cannot be read \(ENOENT\); choose/,
      ],
      [path.join(dir, 'elsewhere/devcontainer.json'), /is outside the folder/],
      [
        path.join(folder, '.devcontainer/out/devcontainer.json'),
        /out\/devcontainer\.json" is outside the folder \(its real path is ".*elsewhere/,
      ],
      [
        path.join(folder, 'dir/devcontainer.json'),
        /is not a regular file; choose a devcontainer\.json or \.devcontainer\.json inside/,
      ],
    ];
    for (const [chosen, message] of cases) {
      assert.throws(() => chosenConfigFile(folder, chosen), refused('E_CONFIG_PATH', message), chosen);
      assert.throws(() => readConfigFile(folder, chosen), refused('E_CONFIG_PATH', message), chosen);
    }
    assert.equal(
      chosenConfigFile(folder, path.join(folder, '.devcontainer/in/devcontainer.json')),
      '.devcontainer/in/devcontainer.json',
      'a link to a file inside the folder keeps its own name, as the listing names it',
    );
  }));

test('--config is taken relative to the current directory and checked before anything starts', () =>
  withFolder((folder) => {
    write(folder, '.devcontainer/a/devcontainer.json', '{}');
    const cwd = process.cwd();
    process.chdir(path.join(folder, '.devcontainer'));
    try {
      const flags = parseWorkspaceFlags(['--workspace-folder', folder, '--config', 'a/devcontainer.json'], 'up', {
        vm: true,
        config: true,
      });
      assert.equal(flags.configFile, path.join(folder, '.devcontainer/a/devcontainer.json'));
      assert.throws(
        () =>
          parseWorkspaceFlags(['--workspace-folder', folder, '--config', 'b/devcontainer.json'], 'up', {
            config: true,
          }),
        refused('E_CONFIG_PATH', /b\/devcontainer\.json" cannot be read/),
      );
      assert.throws(
        () => parseWorkspaceFlags(['--workspace-folder', folder, '--config', 'a/devcontainer.json'], 'down', {}),
        refused('E_BAD_OPTION', /unknown option "--config"/),
        'down takes no --config: a folder has one workspace',
      );
    } finally {
      process.chdir(cwd);
    }
  }));

test("the configuration is part of the container's identity; a container recorded before the choice is adopted", () => {
  const record: WorkspaceRecord = { version: 1, folder: '/p', id: '0123456789abcdef', createdAt: 'then' };
  const go = withContainer(record, 'inputs', '.devcontainer/go/devcontainer.json');
  assert.equal(go.container?.configFile, '.devcontainer/go/devcontainer.json');
  assert.equal(
    withContainer(go, 'inputs', '.devcontainer/go/devcontainer.json'),
    go,
    'the same configuration: the same container',
  );
  const python = withContainer(
    { ...go, container: { ...go.container!, hooksDone: ['onCreateCommand'] } },
    'inputs',
    '.devcontainer/python/devcontainer.json',
  );
  assert.deepEqual(python.container?.hooksDone, [], 'another configuration with the same inputs: a new container');
  assert.equal(python.container?.configFile, '.devcontainer/python/devcontainer.json');

  const old = { ...record, container: { inputs: 'inputs', createdAt: 'then', hooksDone: ['onCreateCommand'] } };
  const adopted = withContainer(old, 'inputs', '.devcontainer.json');
  assert.deepEqual(adopted.container, { ...old.container, configFile: '.devcontainer.json' });
  const rebuilt = withImage(adopted, 'sha256:new');
  assert.equal(rebuilt.record.container?.configFile, '.devcontainer.json', 'a new image keeps the configuration');
});

test('a folder runs one configuration at a time: another is E_WORKSPACE_CONFIG, naming both and how to stop', () =>
  withFolder((folder) => {
    write(folder, '.devcontainer/go/devcontainer.json', '{}');
    write(folder, '.devcontainer/python/devcontainer.json', '{}');
    assert.equal(wantedConfigFile(folder), '.devcontainer/go/devcontainer.json', 'no choice: the first');
    const python = wantedConfigFile(folder, path.join(folder, '.devcontainer/python/devcontainer.json'));
    assert.equal(python, '.devcontainer/python/devcontainer.json');
    assert.equal(configMismatch(folder, python, python), undefined);
    const err = configMismatch(folder, '.devcontainer/go/devcontainer.json', python);
    assert.equal(err?.code, 'E_WORKSPACE_CONFIG');
    assert.match(
      err?.message ?? '',
      /runs "\.devcontainer\/go\/devcontainer\.json", not "\.devcontainer\/python\/devcontainer\.json".*; stop it first \(`microvm down --workspace-folder/,
    );
    assert.match(configMismatch(folder, undefined, python)?.message ?? '', /runs no devcontainer\.json/);
  }));
