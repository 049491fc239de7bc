import * as path from 'node:path';
import * as vscode from 'vscode';
import { listConfigFiles } from '../../engine/index';
import type { Ctx } from '../context';
import { notice } from '../ui/notice-text';
import { showInfo, showWarning } from '../ui/notify';
import { configPickItems, configStateKey, needsConfigChoice, rememberedConfig } from './config-choice';

/**
 * The configuration to open the folder with, relative to it: the remembered choice, else the
 * one the user picks when the folder has several (remembered from then on), else undefined
 * (the engine takes the spec's first, or there is none). Null when the user dismissed the picker.
 */
export async function configForOpen(ctx: Ctx, folder: string): Promise<string | undefined | null> {
  const files = listConfigFiles(folder);
  const remembered = rememberedConfig(ctx.extension.workspaceState.get(configStateKey(folder)), files);
  if (!needsConfigChoice(files, remembered)) return remembered;
  return pickConfig(ctx, folder, files);
}

/** The QuickPick of the folder's configurations; the pick is remembered for the folder. Null when dismissed. */
async function pickConfig(ctx: Ctx, folder: string, files: readonly string[]): Promise<string | null> {
  const picked = await vscode.window.showQuickPick(configPickItems(files), {
    title: 'MicroVM: choose the dev container configuration',
    placeHolder: 'This folder has several devcontainer.json files; the choice is remembered for it',
    matchOnDescription: true,
    ignoreFocusOut: true,
  });
  if (!picked) return null;
  await ctx.extension.workspaceState.update(configStateKey(folder), picked.file);
  ctx.log.info(`dev container configuration chosen: ${picked.file}`);
  return picked.file;
}

/**
 * "MicroVM: Choose Dev Container Configuration": pick again. A VM running another
 * configuration is offered a stop and reopen (a folder runs one at a time); with none
 * running, the next open uses the pick.
 */
export async function chooseConfig(ctx: Ctx, reopen: () => Promise<unknown>, stop: () => Promise<void>): Promise<void> {
  const folder = ctx.folder()?.uri.fsPath;
  if (!folder) {
    void showInfo(notice`MicroVM: open a folder first (File > Open Folder).`);
    return;
  }
  const files = listConfigFiles(folder);
  if (files.length === 0) {
    void showInfo(notice`MicroVM: this folder has no devcontainer.json to choose.`);
    return;
  }
  const picked = await pickConfig(ctx, folder, files);
  if (picked === null) return;
  const session = ctx.session;
  if (session?.isRunning && (session.configFile ?? files[0]) !== picked) {
    const choice = await showWarning(
      notice`MicroVM: the VM runs ${session.configFile ?? files[0]}; stop it and reopen with ${picked}?`,
      'Stop and Reopen',
    );
    if (choice !== 'Stop and Reopen') return;
    await stop();
    await reopen();
    return;
  }
  if (!session?.isRunning) {
    const choice = await showInfo(notice`MicroVM: ${picked} is used at the next open.`, 'Open Folder in MicroVM');
    if (choice) await reopen();
  }
}

/** The chosen configuration as `up` takes it (an absolute path), or nothing for the engine's default. */
export function configParam(folder: string, file: string | undefined): { configFile?: string } {
  return file === undefined ? {} : { configFile: path.join(folder, file) };
}
