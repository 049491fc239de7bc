import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMicrovmError } from '../../engine';
import { consequentialChanges, describeChange } from '../../engine/devcontainer/changes';
import { planWorkspace, resolveConfig } from '../../engine/devcontainer';
import { readConfigFile } from '../../engine/devcontainer/locate';
import { testPlanSettings } from '../helpers/plan-settings';
import { pinDecision, pinned } from '../../engine/workspace/config-pin';
import { clampToLimits, overLimits } from '../../engine/workspace/limits';
import { openWorkspace, recordFile, saveWorkspace, workspaceVolume } from '../../engine/workspace/record';

async function withHome(fn: (dir: string) => unknown): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microvm-ws-'));
  const saved = process.env.MICROVM_HOME;
  process.env.MICROVM_HOME = path.join(dir, 'home');
  try {
    await fn(dir);
  } finally {
    if (saved === undefined) delete process.env.MICROVM_HOME;
    else process.env.MICROVM_HOME = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('the config is read from the folder on the host; a link out of the folder is refused', () =>
  withHome((dir) => {
    const folder = path.join(dir, 'project');
    fs.mkdirSync(path.join(folder, '.devcontainer'), { recursive: true });
    assert.equal(readConfigFile(folder), undefined);
    fs.writeFileSync(path.join(folder, '.devcontainer.json'), '{"image":"a"}');
    assert.equal(readConfigFile(folder)?.file, '.devcontainer.json');
    fs.writeFileSync(path.join(folder, '.devcontainer', 'devcontainer.json'), '{"image":"b"}');
    const found = readConfigFile(folder);
    assert.equal(found?.file, '.devcontainer/devcontainer.json', 'the .devcontainer/ file wins, as in the spec');
    assert.match(found?.digest ?? '', /^[0-9a-f]{64}$/);

    fs.writeFileSync(path.join(dir, 'other-project.json'), '{"containerEnv":{"TOKEN":"secret"}}');
    fs.rmSync(path.join(folder, '.devcontainer', 'devcontainer.json'));
    fs.symlinkSync(path.join(dir, 'other-project.json'), path.join(folder, '.devcontainer', 'devcontainer.json'));
    assert.throws(
      () => readConfigFile(folder),
      (err: unknown) => isMicrovmError(err, 'E_CONFIG') && /outside the folder/.test((err as Error).message),
    );
    fs.rmSync(path.join(folder, '.devcontainer'), { recursive: true });
    fs.mkdirSync(path.join(folder, 'config'));
    fs.writeFileSync(path.join(folder, 'config', 'dev.json'), '{"image":"c"}');
    fs.symlinkSync('config', path.join(folder, '.devcontainer'));
    fs.symlinkSync('dev.json', path.join(folder, 'config', 'devcontainer.json'));
    assert.equal(readConfigFile(folder)?.text, '{"image":"c"}', 'a link that stays inside the folder is fine');
  }));

test('a configuration in a subfolder of .devcontainer/ is found (the first by name, the others reported); its paths start there', () =>
  withHome((dir) => {
    const folder = path.join(dir, 'project');
    const write = (file: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(folder, file)), { recursive: true });
      fs.writeFileSync(path.join(folder, file), text);
    };
    write('.devcontainer/python/devcontainer.json', '{"build":{"dockerfile":"Dockerfile"}}');
    write('.devcontainer/python/Dockerfile', 'FROM python\n');
    write('.devcontainer/Dockerfile', 'FROM node\n');
    const only = readConfigFile(folder);
    assert.equal(only?.file, '.devcontainer/python/devcontainer.json');
    assert.equal(only?.others, undefined);
    const plan = planWorkspace(resolveConfig({ folder, env: {} }), testPlanSettings(), { languages: [] });
    assert.ok(
      plan.source.kind === 'dockerfile' &&
        plan.source.build.dockerfile === path.join(fs.realpathSync(folder), '.devcontainer', 'python', 'Dockerfile'),
      'relative to the configuration found',
    );

    write('.devcontainer/node/devcontainer.json', '{"image":"node:22"}');
    write('.devcontainer/go/devcontainer.json', '{"image":"golang"}');
    const resolved = resolveConfig({ folder, env: {} });
    assert.equal(resolved.file?.file, '.devcontainer/go/devcontainer.json', 'the first by name');
    const other = resolved.problems.find((p) => p.code === 'other-configurations');
    assert.equal(other?.severity, 'warning');
    assert.match(
      other?.message ?? '',
      /^\.devcontainer\/go\/devcontainer\.json is used: .* and \.devcontainer\/node\/devcontainer\.json, \.devcontainer\/python\/devcontainer\.json are not$/,
    );

    write('.devcontainer/devcontainer.json', '{"image":"debian"}');
    assert.deepEqual(readConfigFile(folder)?.file, '.devcontainer/devcontainer.json', 'the top one comes first');
    assert.equal(readConfigFile(folder)?.others, undefined);
  }));

test('changes that take more from the host are listed by path; the rest is not', () => {
  const before = {
    image: 'a',
    hostRequirements: { memory: '4gb', cpus: 2 },
    forwardPorts: [3000],
    postCreateCommand: 'npm ci',
  };
  const after = {
    image: 'b',
    hostRequirements: { memory: '1tb', cpus: 2 },
    forwardPorts: [3000, 5432],
    postCreateCommand: 'make',
    mounts: ['source=x,target=/x,type=volume'],
    customizations: { microvm: { network: 'outbound' }, vscode: { extensions: ['a.b'] } },
  };
  const changes = consequentialChanges(before, after);
  assert.deepEqual(
    changes.map((c) => c.path),
    ['$.hostRequirements.memory', '$.mounts', '$.forwardPorts', '$.customizations.microvm.network'],
  );
  assert.equal(describeChange(changes[0]!), '$.hostRequirements.memory: "4gb" -> "1tb"');
  assert.deepEqual(consequentialChanges(before, { ...before, image: 'c', postStartCommand: 'x' }), []);
});

test('pinning: the first open and unchanged or harmless edits are used; a consequential edit asks', () =>
  withHome((dir) => {
    const folder = path.join(dir, 'p');
    fs.mkdirSync(folder);
    const record = openWorkspace(folder);
    const v1 = { file: '.devcontainer.json', text: '{"hostRequirements":{"memory":"4gb"}}', digest: 'd1' };
    const raw1 = JSON.parse(v1.text) as Record<string, unknown>;
    assert.deepEqual(pinDecision(record, v1, raw1), { kind: 'use', reason: 'first' });
    const pinnedRecord = pinned(record, v1, raw1);
    assert.deepEqual(pinDecision(pinnedRecord, v1, raw1), { kind: 'use', reason: 'unchanged' });
    assert.deepEqual(pinDecision(pinnedRecord, { ...v1, digest: 'd2' }, { ...raw1, image: 'x' }), {
      kind: 'use',
      reason: 'harmless',
    });
    const decision = pinDecision(pinnedRecord, { ...v1, digest: 'd3' }, { hostRequirements: { memory: '1tb' } });
    assert.equal(decision.kind, 'ask');
  }));

test('a workspace record keeps one random id per folder; volumes are named inside it', () =>
  withHome((dir) => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    fs.symlinkSync(a, path.join(dir, 'a-link'));
    const ra = openWorkspace(a);
    assert.match(ra.id, /^[0-9a-f]{16}$/);
    assert.equal(openWorkspace(path.join(dir, 'a-link')).id, ra.id, 'two names of one folder are one workspace');
    const rb = openWorkspace(b);
    assert.notEqual(rb.id, ra.id);
    assert.equal(workspaceVolume(ra, 'node_modules'), `ws-${ra.id}-node_modules`);
    assert.notEqual(
      workspaceVolume(rb, `ws-${ra.id}-node_modules`),
      workspaceVolume(ra, 'node_modules'),
      "naming the other workspace's volume names a new one of its own",
    );
    assert.ok(workspaceVolume(ra, 'x'.repeat(200)).length <= 64);
    assert.equal(fs.statSync(recordFile(a)).mode & 0o777, 0o600);
  }));

test('a saved record is read back; a damaged one is E_WORKSPACE_RECORD naming the file', () =>
  withHome(async (dir) => {
    const folder = path.join(dir, 'p');
    fs.mkdirSync(folder);
    const record = openWorkspace(folder);
    await saveWorkspace({ ...record, config: { file: 'f', digest: 'd', accepted: { image: 'x' } } });
    assert.deepEqual(openWorkspace(folder).config?.accepted, { image: 'x' });
    fs.writeFileSync(recordFile(folder), '{"version": 1, "id": 5');
    assert.throws(
      () => openWorkspace(folder),
      (err: unknown) =>
        isMicrovmError(err, 'E_WORKSPACE_RECORD') && (err as Error).message.includes(recordFile(folder)),
    );
  }));

test('resource requests beyond the host limits are listed and clamped', () => {
  const limits = { memoryMib: 8192, cpus: 2, volumes: 8, volumeMib: 65536 };
  const request = {
    memoryMib: 1024 * 1024,
    cpus: 64,
    volumes: Array.from({ length: 10 }, (_, i) => ({ name: `v${i}`, sizeMib: i === 0 ? 1 << 20 : 1024 })),
  };
  const over = overLimits(request, limits);
  assert.deepEqual(
    over.map((o) => o.what),
    ['memory', 'cpus', 'volumes', 'volume size'],
  );
  assert.match(over[0]!.message, /memory 1024 GiB asked, this host allows 8 GiB/);
  const clamped = clampToLimits(request, limits);
  assert.equal(clamped.memoryMib, 8192);
  assert.equal(clamped.cpus, 2);
  assert.equal(clamped.volumes.length, 8);
  assert.equal(clamped.volumes[0]!.sizeMib, 65536);
  assert.deepEqual(overLimits({ memoryMib: 1024, cpus: 1, volumes: [] }, limits), []);
});
