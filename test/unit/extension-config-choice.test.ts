import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configPickItems, configStateKey, needsConfigChoice, rememberedConfig } from '../../extension/vm/config-choice';

test('the picker lists each configuration by its subfolder name (the top ones by their place), its path as the description', () => {
  assert.deepEqual(
    configPickItems([
      '.devcontainer/devcontainer.json',
      '.devcontainer.json',
      '.devcontainer/go/devcontainer.json',
      '.devcontainer/python/devcontainer.json',
    ]),
    [
      {
        file: '.devcontainer/devcontainer.json',
        label: '.devcontainer/devcontainer.json',
        description: '.devcontainer/devcontainer.json',
      },
      { file: '.devcontainer.json', label: '.devcontainer.json', description: '.devcontainer.json' },
      { file: '.devcontainer/go/devcontainer.json', label: 'go', description: '.devcontainer/go/devcontainer.json' },
      {
        file: '.devcontainer/python/devcontainer.json',
        label: 'python',
        description: '.devcontainer/python/devcontainer.json',
      },
    ],
  );
});

test("a subfolder's name is shown as plain text: no icon, link, control or bidi character from the repository", () => {
  const hostile = '$(warning) [x](command:workbench.action.quit)\n\u202eevil';
  const [item] = configPickItems([`.devcontainer/${hostile}/devcontainer.json`]);
  assert.equal(item?.file, `.devcontainer/${hostile}/devcontainer.json`, 'the file itself is kept as it is');
  for (const shown of [item!.label, item!.description]) {
    assert.doesNotMatch(shown, /\$\(|\[|\]|\n|\u202e|command:/, shown);
  }
});

test('the choice is remembered per folder while the folder still has it; the picker shows only for several and none remembered', () => {
  const files = ['.devcontainer/go/devcontainer.json', '.devcontainer/python/devcontainer.json'];
  assert.notEqual(configStateKey('/a'), configStateKey('/b'));
  assert.equal(
    rememberedConfig('.devcontainer/python/devcontainer.json', files),
    '.devcontainer/python/devcontainer.json',
  );
  assert.equal(rememberedConfig('.devcontainer/rust/devcontainer.json', files), undefined, 'gone from the folder');
  assert.equal(rememberedConfig(42, files), undefined);
  assert.equal(needsConfigChoice(files, undefined), true);
  assert.equal(needsConfigChoice(files, files[1]), false);
  assert.equal(needsConfigChoice(files.slice(0, 1), undefined), false, 'one configuration: no question');
  assert.equal(needsConfigChoice([], undefined), false);
});
