import * as fs from 'node:fs';
import * as path from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';

export const ARTIFACTS = path.join(__dirname, 'artifacts');

/** Debian's chromium, headless, with its profile and temp files in the scratch dir (via TMPDIR/XDG). */
export async function launchChromium(env: NodeJS.ProcessEnv): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    env: env as Record<string, string>,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}

/**
 * Runs a command through the command palette, by its title as the palette shows it. The
 * palette lists the commands known when it opens, so a loaded host may need a second try.
 */
export async function runCommand(page: Page, title: string, attempts = 4): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 10_000 });
      await input.press('Enter');
      return;
    } catch (err) {
      if (attempt >= attempts) {
        await screenshot(page, `failed-command-${title.replace(/\W+/g, '-')}`);
        throw err;
      }
    }
  }
}

/** The visible text of every terminal (the DOM renderer: gpuAcceleration is off). */
export async function terminalText(page: Page): Promise<string> {
  const rows = await page.locator('.xterm-rows').allInnerTexts();
  return rows.join('\n').replace(/\u00a0/g, ' ');
}

export async function waitForText(
  page: Page,
  read: (page: Page) => Promise<string>,
  pattern: RegExp,
  timeoutMs: number,
  what: string,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = await read(page);
    const match = pattern.exec(last);
    if (match) return match;
    if (Date.now() > deadline) {
      await screenshot(page, `failed-${what.replace(/\W+/g, '-')}`);
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (${pattern}); last text:\n${last.slice(-2000)}`,
      );
    }
    await page.waitForTimeout(300);
  }
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Types a line into the focused terminal. */
export async function typeLine(page: Page, line: string): Promise<void> {
  await page.locator('.terminal-wrapper.active .xterm-helper-textarea, .xterm-helper-textarea').last().focus();
  // Right after focus the terminal sometimes drops the first key: two leading spaces (harmless to the shell) absorb it.
  await page.keyboard.type(`  ${line.replace(/^ +/, '')}`, { delay: 15 });
  await page.keyboard.press('Enter');
}
