import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import {
  ensureCodeServer,
  installExtension,
  makeScratch,
  RunningServer,
  Scratch,
  startCodeServer,
  writeUserSettings,
} from './code-server';
import { appendEgressLog, egressLogFile, engineInfo, openWorkspace } from '../../engine/index';
import { ARTIFACTS, launchChromium, runCommand, screenshot, terminalText, typeLine, waitForText } from './workbench';
import { reapStaleStateDirs } from '../../engine/vm/state-dir';
import { SupervisorClient } from '../../engine/supervisor';

/**
 * End to end: the packaged .vsix in a real VS Code (code-server) in a real browser (Debian's
 * chromium driven by playwright-core), opening a fixture folder in a MicroVM.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const VSIX = path.join(ROOT, 'dist', 'microvm-sandbox.vsix');
const GUEST_PORT = 8123;
/** Baking and booting under TCG on a loaded 2-core host: generous. */
const VM_READY_MS = 300_000;

let scratch: Scratch;
let server: RunningServer | undefined;
let browser: Browser | undefined;
let page: Page;
const log = (line: string) => process.stderr.write(`e2e: ${line}\n`);

before(async () => {
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  ensureCodeServer(log);
  execFileSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  scratch = makeScratch();
  const folder = path.join(scratch.root, 'workspace', 'fixture');
  fs.cpSync(path.join(__dirname, 'fixture'), folder, { recursive: true });
  writeUserSettings(scratch, userSettings(false));
  installExtension(scratch, VSIX);
  server = await startCodeServer(scratch);
  browser = await launchChromium(scratch.env);
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${server.url}/?folder=${encodeURIComponent(folder)}`);
  await page.locator('.monaco-workbench .statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  await page.waitForTimeout(2000);
});

/** The folder opens untrusted (Restricted Mode): no trust prompt. */
function userSettings(allowEmulation: boolean): Record<string, unknown> {
  return {
    'terminal.integrated.gpuAcceleration': 'off',
    'security.workspace.trust.startupPrompt': 'never',
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'update.mode': 'none',
    'microvm.allowEmulation': allowEmulation,
    'microvm.memoryMib': 512,
    'microvm.cpus': 1,
  };
}

/** Stops the fixture's workspace VM, which outlives the window by design (its supervisor keeps it for the next one), as `microvm down` does. */
async function downFixture(folder: string): Promise<void> {
  const client = await SupervisorClient.connect(folder, { kind: 'cli', start: false }).catch(() => undefined);
  if (!client) return;
  try {
    // Bounded, and the bound's timer does not keep the test process alive once down() is done.
    await Promise.race([client.down(), new Promise((resolve) => setTimeout(resolve, 60_000).unref())]);
  } catch {
    // the supervisor went away meanwhile
  } finally {
    client.close();
  }
}

after(async () => {
  await browser?.close().catch(() => undefined);
  await server?.stop();
  if (scratch) await downFixture(path.join(scratch.root, 'workspace', 'fixture'));
  // SIGTERM ends the extension host without deactivate (as a crash would): remove the state
  // its VM left on /dev/shm now, as the next engine start would.
  reapStaleStateDirs();
  if (!scratch) return;
  // VS Code's logs (the extension host's and the MicroVM output channel) go with the screenshots.
  fs.rmSync(path.join(ARTIFACTS, 'logs'), { recursive: true, force: true });
  fs.cpSync(path.join(scratch.userDataDir, 'logs'), path.join(ARTIFACTS, 'logs'), { recursive: true });
  if (server) fs.writeFileSync(path.join(ARTIFACTS, 'logs', 'code-server.log'), server.output());
  // The per-workspace node_modules volume is named after the folder path, which is scratch.
  const id = createHash('sha256')
    .update(path.join(scratch.root, 'workspace', 'fixture'))
    .digest('hex')
    .slice(0, 12);
  for (const suffix of ['.ext4', '.ext4.lock'])
    fs.rmSync(path.join(scratch.env.MICROVM_HOME as string, 'volumes', `node_modules-${id}${suffix}`), { force: true });
  fs.rmSync(scratch.root, { recursive: true, force: true });
});

test('under TCG an untrusted folder is refused until microvm.allowEmulation is set', async () => {
  const { isolation } = await engineInfo();
  if (isolation === 'emulated') {
    await runCommand(page, 'MicroVM: Open Folder in MicroVM');
    await waitForText(
      page,
      notificationsText,
      /QEMU does not treat TCG as a security boundary.*microvm\.allowEmulation/,
      60_000,
      'the refusal',
    );
    await screenshot(page, '00-untrusted-tcg-refused');
    assert.doesNotMatch(await statusText(page), /booting|ready/);
  }
  // Opt in through the user settings file; a reload makes the window read it again.
  writeUserSettings(scratch, userSettings(true));
  await page.reload();
  await page.locator('.monaco-workbench .statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  await page.waitForTimeout(2000);
});

test('Open Folder in MicroVM gives a terminal in the guest, in the workspace folder', async () => {
  await runCommand(page, 'MicroVM: Open Folder in MicroVM');
  await waitForText(page, statusText, /MicroVM: (baking|booting|ready)/, 60_000, 'the status bar to leave "stopped"');
  await waitForText(
    page,
    terminalText,
    /@microvm:\/workspaces\/fixture[#$]/,
    VM_READY_MS,
    'a shell prompt in the workspace folder',
  );
  await screenshot(page, '01-opened');
  // The hook ran in its own terminal (now behind the shell's); its output is also in a file.
  await typeLine(page, 'cat /tmp/post-start.txt');
  await waitForText(
    page,
    terminalText,
    /post-start ran in \/workspaces\/fixture as e2e/,
    60_000,
    'the post-start hook (with containerEnv)',
  );

  const kernel = fs
    .readFileSync(path.join(scratch.env.MICROVM_HOME as string, 'assets', 'kernel-release'), 'utf8')
    .trim();
  await typeLine(page, 'uname -r');
  await waitForText(
    page,
    terminalText,
    new RegExp(kernel.replace(/[.]/g, '\\.')),
    30_000,
    `uname -r to print ${kernel}`,
  );
  await typeLine(page, 'ls');
  await waitForText(page, terminalText, /hello\.txt/, 30_000, 'ls to list the fixture');
  const text = await terminalText(page);
  assert.match(text, /index\.html/);
  await screenshot(page, '02-terminal-uname-ls');
});

test('a window reload reattaches to the running VM: the terminal comes back with its output, its background process alive', async () => {
  await typeLine(page, 'sleep 1000 & echo "bg-pid=$!"');
  const pid = (await waitForText(page, terminalText, /bg-pid=(\d+)/, 30_000, 'the background sleep'))[1];
  await page.reload();
  await page.locator('.monaco-workbench .statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  await waitForText(page, statusText, /MicroVM: ready/, 60_000, 'the status bar to say ready again without an open');
  await waitForText(
    page,
    terminalText,
    new RegExp(`bg-pid=${pid}`),
    30_000,
    'the reopened terminal to replay its earlier output',
  );
  await screenshot(page, '02b-reattached');
  await typeLine(page, `kill -0 ${pid} && echo "still-alive-${pid}"`);
  await waitForText(
    page,
    terminalText,
    new RegExp(`still-alive-${pid}`),
    30_000,
    'sleep 1000 to have survived the reload',
  );
  const reattached = await waitForText(
    page,
    microvmLog,
    /reattached to VM \w+ in (\d+) ms/,
    10_000,
    'the reattach in the MicroVM log',
  );
  log(`reattach after a window reload: ${reattached[1]} ms`);
});

test('Ctrl-C reaches the guest, the pty follows the panel size, and several terminals run at once', async () => {
  await typeLine(page, 'sleep 600');
  await page.waitForTimeout(1000);
  await page.keyboard.press('Control+C');
  await typeLine(page, 'echo sleep-ended-$?');
  await waitForText(page, terminalText, /sleep-ended-130/, 30_000, 'Ctrl-C to interrupt sleep (exit 130)');
  await typeLine(page, 'echo size=$(stty size | tr " " x)');
  const size = await waitForText(page, terminalText, /size=(\d+)x(\d+)/, 30_000, 'stty size');
  assert.notEqual(`${size[1]}x${size[2]}`, '24x80', 'the pty should have the panel size, not the default');

  await runCommand(page, 'MicroVM: New Terminal in MicroVM');
  await page.waitForTimeout(1500);
  await typeLine(page, 'echo second terminal pid $$; exit 7');
  await waitForText(page, terminalText, /process exited with code 7/, 30_000, 'the exit code of the second terminal');
  await screenshot(page, '03-second-terminal-exit-code');
  await page.keyboard.press('Enter');
  await page.waitForTimeout(1000);
});

test('a server in the guest shows in the Ports view and answers on the host', async () => {
  await typeLine(page, `busybox httpd -p 0.0.0.0:${GUEST_PORT} -h /workspaces/fixture && echo httpd started`);
  await waitForText(page, terminalText, /httpd started/, 30_000, 'httpd to start');
  await runCommand(page, 'MicroVM: Focus on Ports View');
  const match = await waitForText(
    page,
    portsText,
    new RegExp(`Guest port ${GUEST_PORT}[^\\n]*forwarded to 127\\.0\\.0\\.1:(\\d+)`),
    60_000,
    'the port in the Ports view',
  );
  await screenshot(page, '04-ports-view');
  const response = await fetch(`http://127.0.0.1:${match[1]}/hello.txt`);
  assert.equal(response.status, 200);
  assert.equal((await response.text()).trim(), 'hello from the fixture');
});

test('the status bar says ready, with the accelerator, and warns on TCG', async () => {
  const status = await statusText(page);
  const accel = /MicroVM: ready \((\w+)\)/.exec(status);
  assert.ok(accel, `status bar: ${status}`);
  const item = page.locator('.statusbar-item', { hasText: 'MicroVM: ready' }).first();
  if (accel[1] === 'tcg') {
    assert.match(await item.innerHTML(), /codicon-warning/);
    await item.hover();
    await waitForText(page, hoverText, /not treat TCG as a security boundary/, 15_000, 'the TCG tooltip');
  }
  await screenshot(page, '05-status-bar');
});

test('Approve Learned Hosts lists each host with its guest processes as plain text, and approves the ticked ones', async () => {
  // A learn run's log, as the engine writes it: the beacon's process names are what a hostile guest could report.
  const folder = path.join(scratch.root, 'workspace', 'fixture');
  const logLine = (name: string, comm: string) => ({
    at: new Date().toISOString(),
    name,
    port: 443,
    allowed: true,
    bytesUp: 100,
    bytesDown: 1000,
    mode: 'learn' as const,
    process: { pid: 42, comm },
  });
  for (let i = 0; i < 3; i++) appendEgressLog(egressLogFile(folder), logLine('registry.npmjs.org', 'npm'));
  for (const comm of ['[x](command:a)', '$(check) ok', 'gnp\u202e.exe', 'line\nbreak'])
    appendEgressLog(egressLogFile(folder), logLine('beacon.example', comm));

  try {
    await runCommand(page, 'MicroVM: Approve Learned Hosts');
    const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
    await waitForText(page, pickText, /beacon\.example/, 30_000, 'the learned hosts in a QuickPick');
    await screenshot(page, '06-learned-hosts');
    const text = await pickText(page);
    assert.match(text, /registry\.npmjs\.org ?3 connections by npm \(3 connections\)/);
    assert.match(text, /"\uff3bx\uff3d\(command\u2236a\)" \(1 connection\)/, 'brackets as look-alikes, in quotes');
    assert.match(text, /"\uff04\(check\) ok" \(1 connection\)/, 'no icon syntax');
    assert.match(text, /"gnp\\u202e\.exe"/, 'the bidi override shown escaped');
    assert.match(text, /"line\\nbreak"/, 'the line break shown escaped');
    assert.match(await page.locator('.quick-input-widget').innerText(), /process names as the guest reports them/);
    assert.doesNotMatch(text, /[\u202e\n]|command:/);
    const list = page.locator('.quick-input-widget .quick-input-list');
    // The row's own checkbox is a codicon; an icon inside a label or detail would come from the text.
    const made = list.locator('a[href], a[data-href], .monaco-highlighted-label .codicon');
    assert.equal(await made.count(), 0, await list.innerHTML());

    // Untick the beacon, approve the rest.
    await rows.filter({ hasText: 'beacon.example' }).locator('.monaco-checkbox, input[type=checkbox]').first().click();
    await page.locator('.quick-input-widget .quick-input-box input').first().press('Enter');
    const deadline = Date.now() + 15_000;
    while (!(openWorkspace(folder).egress?.allow ?? []).includes('registry.npmjs.org') && Date.now() < deadline)
      await page.waitForTimeout(300);
    assert.deepEqual(openWorkspace(folder).egress?.allow, ['registry.npmjs.org']);
  } finally {
    fs.rmSync(egressLogFile(folder), { force: true });
  }
});

test('guest text stays plain: a hostile process name in the Ports view, a hostile console line in the VM-exited notification', async () => {
  // /proc/PID/comm is the file's name (15 bytes at most); busybox picks its applet from argv[0].
  const hostile = '[x](command:workbench.action.quit)';
  // The leading spaces absorb a keystroke lost right after the terminal takes focus on a loaded host.
  await typeLine(
    page,
    `cp /bin/busybox '/tmp/[x](command:a)' && bash -c 'exec -a nc "/tmp/[x](command:a)" -l -p ${GUEST_PORT + 1}' &`,
  );
  await runCommand(page, 'MicroVM: Focus on Ports View');
  await waitForText(
    page,
    portsText,
    new RegExp(`Guest port ${GUEST_PORT + 1}, \\[x\\]\\(command:a\\)`),
    60_000,
    'the hostile process name, verbatim, in the Ports view',
  );
  const row = page.locator(`.monaco-list-row[aria-label*="Guest port ${GUEST_PORT + 1}"]`);
  assert.match(await row.innerText(), /\[x\]\(command:a\)/, 'the process name is shown verbatim');
  // A link would be an anchor with a target; the label's own anchor (a.label-name) has none.
  const label = row.locator('.monaco-icon-label-container');
  assert.equal(
    await label.locator('a[href], a[data-href]').count(),
    0,
    `no link in the Ports view row: ${await label.innerHTML()}`,
  );

  await typeLine(page, `echo '${hostile}' > /dev/console; poweroff -f`);
  await waitForText(
    page,
    notificationsText,
    /the VM stopped unexpectedly \(E_VM_EXITED\); see the MicroVM log/,
    60_000,
    'the notification that the VM stopped',
  );
  await screenshot(page, '07-vm-exited-notification');
  // Ours only: code-server's own port forwarding shows a toast with a link of its own ("See all forwarded ports").
  const ours = page.locator('.notifications-toasts .notification-list-item', {
    hasText: 'Source: MicroVM Dev Sandboxes',
  });
  assert.ok((await ours.count()) >= 1);
  assert.equal(
    await ours.locator('.notification-list-item-message a').count(),
    0,
    'no link in our notification messages',
  );
  assert.doesNotMatch(await notificationsText(page), /command:|\[x\]/);
  // The detail, console tail included, is in the MicroVM log.
  await waitForText(
    page,
    microvmLog,
    new RegExp(hostile.replace(/[[\]().]/g, '\\$&')),
    10_000,
    'the console line in the MicroVM log',
  );
});

/** Every MicroVM output channel log of this code-server's extension hosts. */
async function microvmLog(): Promise<string> {
  const logs = path.join(scratch.userDataDir, 'logs');
  const files = fs
    .readdirSync(logs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(path.join('microvm.microvm-sandbox', 'MicroVM.log')));
  return files.map((f) => fs.readFileSync(path.join(logs, f), 'utf8')).join('\n');
}

async function statusText(p: Page): Promise<string> {
  return (await p.locator('.statusbar').innerText()).replace(/\s+/g, ' ');
}

async function notificationsText(p: Page): Promise<string> {
  return (await p.locator('.notifications-toasts').allInnerTexts()).join('\n').replace(/\s+/g, ' ');
}

async function pickText(p: Page): Promise<string> {
  return (await p.locator('.quick-input-widget .quick-input-list .monaco-list-row').allInnerTexts())
    .join('\n')
    .replace(/\s+/g, ' ');
}

async function hoverText(p: Page): Promise<string> {
  return (await p.locator('.workbench-hover, .monaco-hover').allInnerTexts()).join('\n');
}

async function portsText(p: Page): Promise<string> {
  const labels = await p
    .locator('.monaco-list-row[aria-label*="Guest port"]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
  return labels.join('\n');
}
