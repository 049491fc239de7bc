import * as vscode from 'vscode';
import {
  CancelledError,
  DEFAULT_PROTECT,
  engineInfo,
  formatProblem,
  isMicrovmError,
  openWorkspace,
  PlanSettings,
  Problem,
  removeVolume,
  saveWorkspace,
  SupervisorClient,
  WorkspaceRecord,
} from '../../engine/index';
import type { Ctx } from '../context';
import { askConfigChanged, askOverLimits } from './provenance';
import { accelEnv, builderImageEnv, BUILDER_IMAGE_ENV, mirrorsEnv, MIRRORS_ENV, Settings } from '../config/settings';
import { openShellTerminal } from '../terminal/terminals';
import { failureNotice, FailureContext } from '../ui/failure-notice';
import { notice } from '../ui/notice-text';
import { progressText } from '../ui/plain-text';
import { showError, showInfo, showWarning } from '../ui/notify';
import { SupervisedWorkspace } from './supervised';
import { configForOpen, configParam } from './choose-config';
import { decideOpen } from './trust';
import { askEgress, offerLearnedHosts } from './egress-offer';
import { renderEvents } from './workspace-events';

let opening: Promise<SupervisedWorkspace | undefined> | undefined;

/** The mirrors of the environment VS Code started with; the setting's come before them. */
const LAUNCH_MIRRORS = process.env[MIRRORS_ENV];

/** The builder image of the environment VS Code started with; the setting comes first. */
const LAUNCH_BUILDER_IMAGE = process.env[BUILDER_IMAGE_ENV];

function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/**
 * "MicroVM: Open Folder in MicroVM": reads the config, checks trust against isolation,
 * bakes and boots with a cancellable progress notification, then forwards ports, runs the
 * post-start hooks and opens a terminal in the workspace folder. Concurrent calls share one run.
 */
export async function openFolder(
  ctx: Ctx,
  options: { terminal: boolean } = { terminal: true },
): Promise<SupervisedWorkspace | undefined> {
  await ctx.reattaching;
  if (ctx.session?.isRunning) {
    if (options.terminal) openShellTerminal(ctx);
    return ctx.session;
  }
  opening ??= open(ctx, options).finally(() => {
    opening = undefined;
  });
  return opening;
}

async function open(ctx: Ctx, options: { terminal: boolean }): Promise<SupervisedWorkspace | undefined> {
  const folder = ctx.folder();
  if (!folder) {
    void showError(
      notice`MicroVM: open a folder first (File > Open Folder), then run "MicroVM: Open Folder in MicroVM".`,
    );
    return undefined;
  }
  const settings = ctx.settings();
  const accel = accelEnv(settings);
  if (accel) process.env.MICROVM_ACCEL = accel;
  try {
    setEnv(MIRRORS_ENV, mirrorsEnv(settings, LAUNCH_MIRRORS));
    setEnv(BUILDER_IMAGE_ENV, builderImageEnv(settings, LAUNCH_BUILDER_IMAGE));
    // The first call may run a KVM boot probe (cached afterwards).
    const info = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'MicroVM: checking the accelerator' },
      () => engineInfo(),
    );
    ctx.setAccel({ accel: info.accel, isolation: info.isolation });
    ctx.log.info(`accelerator ${info.accel} (${info.accelReason})${info.warning ? `; warning: ${info.warning}` : ''}`);
    const decision = decideOpen({
      trusted: vscode.workspace.isTrusted,
      isolation: info.isolation,
      allowEmulation: settings.allowEmulation,
    });
    if (!decision.allowed) {
      ctx.log.warn(decision.message);
      void showError(decision.message, 'Open Settings').then(
        (choice) => choice && vscode.commands.executeCommand('workbench.action.openSettings', 'microvm.allowEmulation'),
      );
      return undefined;
    }
    const folderPath = folder.uri.fsPath;
    // Several devcontainer.json files: the one remembered for the folder, else the user picks.
    const configFile = await configForOpen(ctx, folderPath);
    if (configFile === null) {
      ctx.log.info('Open Folder in MicroVM was cancelled: no configuration chosen');
      return undefined;
    }
    const client = (await SupervisorClient.connect(folderPath, {
      kind: 'extension',
      idleStopMinutes: settings.idleStopMinutes,
      asksHosts: settings.askForHosts,
    })) as SupervisorClient;
    if (settings.askForHosts) client.askEgress = askEgress;
    const workspace = new SupervisedWorkspace(client, '');
    workspace.configFile = configFile;
    let onProgress: (step: string) => void = () => undefined;
    renderEvents(ctx, workspace, {
      onProgress: (step) => onProgress(step),
      onExited: (error) => void failed(ctx, error, 'exited'),
    });
    const hooksSettled = new Promise<void>((resolve) =>
      client.onEvent((event) => {
        if (event.type === 'hooksSettled') resolve();
      }),
    );
    ctx.session = workspace;
    ctx.setStatus('baking', 'Preparing the image');
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'MicroVM', cancellable: true },
      async (progress, token) => {
        // Cancel aborts the open: the supervisor stops the pull, build, bake or boot under way and ends.
        const abort = new AbortController();
        const cancel = token.onCancellationRequested(() => abort.abort());
        // Steps may name an image or a feature from the configuration: plain text, bounded.
        onProgress = (message) => progress.report({ message: progressText(message) });
        try {
          return await client.up(
            {
              settings: planSettings(settings),
              allowLocalEnv: settings.localEnvAllow,
              ...configParam(folderPath, configFile),
              limits: { maxMemoryMib: settings.maxMemoryMib, maxCpus: settings.maxCpus },
              askForHosts: settings.askForHosts,
              typeProjection: settings.typeProjection,
            },
            {
              configChanged: (file, changes) => askConfigChanged(ctx, file, changes),
              overLimits: (over) => askOverLimits(ctx, over),
            },
            { signal: abort.signal },
          );
        } catch (err) {
          throw token.isCancellationRequested || isMicrovmError(err, 'E_ABORTED') ? new CancelledError() : err;
        } finally {
          onProgress = () => undefined;
          cancel.dispose();
        }
      },
    );
    workspace.workspaceFolder = result.remoteWorkspaceFolder;
    reportProblems(ctx, 'devcontainer.json', result.problems);
    void recommendExtensions(ctx, openWorkspace(folderPath), result.recommended);
    await workspace.refreshPorts();
    ctx.setStatus('ready', `Workspace at ${result.remoteWorkspaceFolder}`);
    ctx.refreshPorts();
    if (result.network === 'learn') void hooksSettled.then(() => offerLearnedHosts(ctx, folderPath));
    if (options.terminal) openShellTerminal(ctx);
    return workspace;
  } catch (err) {
    return failed(ctx, err);
  }
}

/**
 * The configuration's problems go to the log, one line each; a notification only points there
 * (they quote the file). Errors stop the open: false when there is one.
 */
function reportProblems(ctx: Ctx, file: string, problems: Problem[]): boolean {
  for (const problem of problems) {
    const line = formatProblem(file, problem);
    if (problem.severity === 'error') ctx.log.error(line);
    else if (problem.severity === 'warning') ctx.log.warn(line);
    else ctx.log.info(line);
  }
  const errors = problems.filter((p) => p.severity === 'error').length;
  const warnings = problems.filter((p) => p.severity === 'warning').length;
  if (errors > 0) {
    void showError(
      notice`MicroVM: ${file} has ${errors} problem(s) that keep the folder from opening as described; see the MicroVM log.`,
      'Show Log',
    ).then((choice) => choice && ctx.log.show());
    return false;
  }
  if (warnings > 0) {
    void showWarning(
      notice`MicroVM: ${warnings} setting(s) of ${file} are not used as written; see the MicroVM log.`,
      'Show Log',
    ).then((choice) => choice && ctx.log.show());
  }
  return true;
}

/**
 * `customizations.vscode.extensions`, once per list: a notification whose button shows them in
 * the Extensions view, where the user installs what they want. Nothing is installed here.
 */
async function recommendExtensions(ctx: Ctx, record: WorkspaceRecord, ids: string[]): Promise<void> {
  if (ids.length === 0 || JSON.stringify(record.recommended ?? []) === JSON.stringify(ids)) return;
  await saveWorkspace({ ...openWorkspace(record.folder), recommended: ids });
  ctx.log.info(`the workspace recommends these editor extensions: ${ids.join(', ')}`);
  const choice = await showInfo(
    notice`MicroVM: this workspace recommends ${ids.length} editor extension(s).`,
    'Show Extensions',
  );
  if (choice) await vscode.commands.executeCommand('workbench.extensions.action.showExtensionsWithIds', ids);
}

/** The user's settings as the engine's planner takes them. */
function planSettings(settings: Settings): PlanSettings {
  return {
    image: settings.image,
    defaultImages: settings.defaultImages,
    memoryMib: settings.memoryMib,
    cpus: settings.cpus,
    network: settings.network,
    symlinks: settings.symlinks,
    protect: [...new Set([...DEFAULT_PROTECT, ...settings.protectedNames])],
    git: settings.gitAccess,
    trustCertificates: settings.trustHostCertificates,
    allowedHosts: settings.allowedHosts,
    allowedHostsPresets: settings.allowedHostsPresets,
    trusted: vscode.workspace.isTrusted,
  };
}

export function failed(ctx: Ctx, err: unknown, context: FailureContext = 'open'): undefined {
  const session = ctx.session;
  ctx.session = undefined;
  // A start that failed leaves no supervisor behind (nothing else would stop it).
  void session?.stop().catch(() => undefined);
  ctx.refreshPorts();
  if (err instanceof CancelledError) {
    ctx.log.info('Open Folder in MicroVM was cancelled');
    ctx.setStatus('stopped');
    return undefined;
  }
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: string }).code;
  ctx.log.error(`${code ? `[${code}] ` : ''}${message}`);
  // The message may quote the guest (a console tail) or the config: it stays in the log.
  const text = failureNotice(err, context);
  ctx.setStatus('error', text);
  const volume = damagedVolume(err);
  if (volume) {
    void showError(text, 'Recreate Volume', 'Show Log').then((choice) => {
      if (choice === 'Show Log') ctx.log.show();
      if (choice === 'Recreate Volume') void recreateVolume(ctx, volume);
    });
    return undefined;
  }
  void showError(text, 'Show Log').then((choice) => choice && ctx.log.show());
  return undefined;
}

/** The volume whose guest mount failed (its file system may be damaged), if that is the error. */
function damagedVolume(err: unknown): string | undefined {
  return isMicrovmError(err, 'E_VOLUME') && err.details.failed === 'mount' ? err.details.volume : undefined;
}

/** Deletes the volume (the guest's file system on it is never repaired on the host) and opens again. */
async function recreateVolume(ctx: Ctx, volume: string): Promise<void> {
  try {
    await removeVolume(volume);
    ctx.log.info(`removed the volume ${volume}; it is created afresh at this open`);
  } catch (err) {
    failed(ctx, err);
    return;
  }
  await openFolder(ctx);
}

/** "MicroVM: Stop": ends the VM, its forwards and its terminals' processes (microvm down). */
export async function stopVm(ctx: Ctx): Promise<void> {
  const session = ctx.session;
  ctx.session = undefined;
  await session?.stop();
  ctx.refreshPorts();
  ctx.setStatus('stopped');
  ctx.log.info('VM stopped');
}
