import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as pty from 'node-pty';
import { Terminal } from '@xterm/headless';
import { setTimeout as delay } from 'node:timers/promises';
import { testImage } from '../helpers/test-arch';
import { buildBundles, Bundles } from './cli-helpers';

/**
 * `microvm shell` on a real pseudo-terminal, read back from a headless xterm's screen the
 * way a user sees it. One VM serves the whole session; the tests run in order.
 */
let bundles: Bundles;
let shell: pty.IPty;
let term: Terminal;
let exit: Promise<{ exitCode: number; signal?: number }>;

/** A line that starts with the prompt the CLI sets, bare or followed by a typed command. */
const PROMPT = /^root@microvm:\S*[#$]( |$)/;

function screenLines(): string[] {
  const buffer = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
  return lines;
}

function screen(): string {
  return screenLines().join('\n');
}

/** xterm parses writes asynchronously: an empty write's callback runs after all earlier ones. */
function settled(): Promise<void> {
  return new Promise((resolve) => term.write('', resolve));
}

async function waitForScreen(check: (lines: string[]) => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    await settled();
    if (check(screenLines())) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; screen:\n${screen()}`);
    await delay(50);
  }
}

function promptCount(lines: string[]): number {
  return lines.filter((line) => PROMPT.test(line)).length;
}

/** Types a command and waits for the prompt after its output. */
async function typeCommand(command: string): Promise<void> {
  const before = promptCount(screenLines());
  shell.write(`${command}\r`);
  await waitForScreen((lines) => promptCount(lines) > before, `the prompt after \`${command}\``);
}

before(async () => {
  bundles = await buildBundles();
  term = new Terminal({ cols: 100, rows: 30, allowProposedApi: true, scrollback: 1000 });
  const { ref } = testImage();
  shell = pty.spawn(process.execPath, [bundles.cli, 'shell', ...(ref ? ['--image', ref] : [])], {
    name: 'xterm-256color',
    cols: 100,
    rows: 30,
    cwd: process.cwd(),
    env: process.env as Record<string, string>,
  });
  shell.onData((data) => term.write(data));
  exit = new Promise((resolve) => shell.onExit(resolve));
});

after(async () => {
  const exited = await Promise.race([exit?.then(() => true), delay(100, false, { ref: false })]);
  if (shell && !exited) shell.kill('SIGKILL');
  term?.dispose();
  if (bundles) fs.rmSync(bundles.dir, { recursive: true, force: true });
});

test('a prompt appears, with the TCG warning above it when emulated', async () => {
  await waitForScreen((lines) => promptCount(lines) >= 1, 'the first prompt', 60_000);
  const text = screen();
  if (/TCG/.test(text)) assert.match(text, /warning: running under TCG/);
});

test('typed input runs: echo $((6*7)) shows 42', async () => {
  await typeCommand('echo $((6*7))');
  const lines = screenLines();
  const echoed = lines.findIndex((line) => line.endsWith('echo $((6*7))'));
  assert.ok(echoed >= 0, `the command is echoed:\n${screen()}`);
  assert.equal(lines[echoed + 1]!.trim(), '42');
});

test('resizing the pty reaches the guest: stty size reports the new size', async () => {
  await typeCommand('stty size');
  assert.ok(
    screenLines().some((line) => line.trim() === '30 100'),
    `initial size:\n${screen()}`,
  );
  shell.resize(120, 40);
  term.resize(120, 40);
  // The CLI learns of the resize from SIGWINCH; give it a moment to forward RESIZE to the agent.
  await delay(300);
  await typeCommand('stty size');
  assert.ok(
    screenLines().some((line) => line.trim() === '40 120'),
    `size after resize:\n${screen()}`,
  );
});

test('Ctrl-C interrupts sleep 100 and the prompt comes back', async () => {
  const before = promptCount(screenLines());
  shell.write('sleep 100\r');
  await waitForScreen((lines) => lines.some((line) => line.endsWith('sleep 100')), 'sleep to be echoed');
  await delay(500);
  const started = Date.now();
  shell.write('\x03');
  await waitForScreen((lines) => promptCount(lines) > before, 'the prompt after Ctrl-C', 5_000);
  assert.ok(Date.now() - started < 5_000);
  await typeCommand('echo "status $?"');
  assert.ok(
    screenLines().some((line) => line.trim() === 'status 130'),
    `sleep ended by SIGINT:\n${screen()}`,
  );
});

test('exit ends the CLI with exit code 0', async () => {
  shell.write('exit\r');
  const result = await Promise.race([exit, delay(15_000, null, { ref: false })]);
  assert.ok(result, `the CLI did not exit; screen:\n${screen()}`);
  assert.equal(result.exitCode, 0);
});
