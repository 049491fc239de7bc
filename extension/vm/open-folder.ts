import * as vscode from 'vscode';
import {
  CancelledError, DEFAULT_PROTECT, engineInfo, formatProblem, isMicrovmError, openWorkspace, PlanSettings, prepareWorkspace, Problem,
  recommendedExtensions, removeVolume, saveWorkspace, Session, WorkspaceRecord,
} from '../../engine/index';
import type { Ctx } from '../context';
import { askConfigChanged, askOverLimits } from './provenance';
import { accelEnv, builderImageEnv, BUILDER_IMAGE_ENV, mirrorsEnv, MIRRORS_ENV, Settings } from '../config/settings';
import { portNotices } from '../ports/notices';
import { openShellTerminal } from '../terminal/terminals';
import { failureNotice, FailureContext } from '../ui/failure-notice';
import { notice } from '../ui/notice-text';
import { progressText } from '../ui/plain-text';
import { showError, showInfo, showWarning } from '../ui/notify';
import { decideOpen } from './trust';
import { askEgress, offerLearnedHosts } from './egress-offer';


let opening: Promise<Session | undefined> | undefined;

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
export async function openFolder(ctx: Ctx, options: { terminal: boolean } = { terminal: true }): Promise<Session | undefined> {
  if (ctx.session?.isRunning) {
    if (options.terminal) openShellTerminal(ctx);
    return ctx.session;
  }
  opening ??= open(ctx, options).finally(() => { opening = undefined; });
  return opening;
}

async function open(ctx: Ctx, options: { terminal: boolean }): Promise<Session | undefined> {
  const folder = ctx.folder();
  if (!folder) {
    void showError(notice`MicroVM: open a folder first (File > Open Folder), then run "MicroVM: Open Folder in MicroVM".`);
    return undefined;
  }
  const settings = ctx.settings();
  const accel = accelEnv(settings);
  if (accel) process.env.MICROVM_ACCEL = accel;
  try {
    setEnv(MIRRORS_ENV, mirrorsEnv(settings, LAUNCH_MIRRORS));
    setEnv(BUILDER_IMAGE_ENV, builderImageEnv(settings, LAUNCH_BUILDER_IMAGE));
    // The first call may run a KVM boot probe (cached afterwards).
    const info = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'MicroVM: checking the accelerator' }, () => engineInfo());
    ctx.setAccel({ accel: info.accel, isolation: info.isolation });
    ctx.log.info(`accelerator ${info.accel} (${info.accelReason})${info.warning ? `; warning: ${info.warning}` : ''}`);
    const decision = decideOpen({ trusted: vscode.workspace.isTrusted, isolation: info.isolation, allowEmulation: settings.allowEmulation });
    if (!decision.allowed) {
      ctx.log.warn(decision.message);
      void showError(decision.message, 'Open Settings')
        .then((choice) => choice && vscode.commands.executeCommand('workbench.action.openSettings', 'microvm.allowEmulation'));
      return undefined;
    }
    // Resolving features asks their registries for manifests: say so in the status bar.
    const prepared = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'MicroVM' }, (progress) => prepareWorkspace({
      folder: folder.uri.fsPath,
      settings: planSettings(settings),
      allowLocalEnv: settings.localEnvAllow,
      limits: { maxMemoryMib: settings.maxMemoryMib, maxCpus: settings.maxCpus },
      onConfigChanged: (file, changes) => askConfigChanged(ctx, file, changes),
      onOverLimits: (over) => askOverLimits(ctx, over),
      onProgress: (step) => {
        progress.report({ message: progressText(step) });
        ctx.log.info(step);
      },
    }));
    if (!prepared) return undefined;
    const { plan, resolved } = prepared;
    if (!reportProblems(ctx, resolved.file?.file ?? 'devcontainer.json', prepared.problems)) return undefined;
    void recommendExtensions(ctx, prepared.record, recommendedExtensions(resolved.config, resolved.raw));
    const session = new Session(plan, {
      log: (line) => ctx.log.info(line),
      baking: () => ctx.setStatus('baking'),
      booting: () => ctx.setStatus('booting'),
      portsChanged: () => ctx.refreshPorts(),
      ...portNotices(),
      exited: (error) => void failed(ctx, error, 'exited'),
      hostDiskFull: (message) => {
        ctx.log.warn(message);
        void showWarning(notice`MicroVM: the host disk holding a VM volume is full and the VM is paused; free some space, then Resume (details in the MicroVM log).`, 'Resume')
          .then((choice) => choice && ctx.session?.resume().catch((err: Error) => failed(ctx, err)));
      },
      ...(settings.askForHosts ? { askEgress: (name: string, port: number) => askEgress(name, port) } : {}),
      output: (label, chunk) => ctx.lifecycle.write(label, chunk.toString('utf8')),
      started: (o) => ctx.lifecycle.note(`> ${o.name ? `${o.hook} (${o.name})` : o.hook}: ${o.command}`),
      finished: (o) => ctx.lifecycle.note(`${o.name ? `${o.hook} (${o.name})` : o.hook} exited ${o.exitCode}`),
      hookFailed: (description, retry) => {
        ctx.log.error(description);
        ctx.lifecycle.show();
        void showError(notice`MicroVM: a lifecycle command failed; the VM keeps running (its output is in the "MicroVM: lifecycle" terminal).`, 'Retry', 'Show Log')
          .then((choice) => {
            if (choice === 'Show Log') ctx.log.show();
            if (choice === 'Retry') void retry().catch((err: Error) => ctx.log.error(`retry: ${err.message}`));
          });
      },
    }, prepared.lifecycle);
    session.typeProjection = settings.typeProjection;
    return await startSession(ctx, session, options);
  } catch (err) {
    return failed(ctx, err);
  }
}

async function startSession(ctx: Ctx, session: Session, options: { terminal: boolean }): Promise<Session | undefined> {
  ctx.session = session;
  ctx.setStatus('baking', 'Preparing the image');
  await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'MicroVM', cancellable: true }, async (progress, token) => {
    const cancel = token.onCancellationRequested(() => void session.stop());
    // Steps may name an image or a feature from the configuration: plain text, bounded.
    session.onProgress = (message) => progress.report({ message: progressText(message) });
    try {
      await session.start();
    } finally {
      cancel.dispose();
    }
  });
  ctx.setStatus('ready', `Workspace at ${session.plan.workspaceFolder}`);
  ctx.refreshPorts();
  const folder = ctx.folder()?.uri.fsPath;
  if (session.plan.network === 'learn' && folder) void session.hooksSettled().then(() => offerLearnedHosts(ctx, folder));
  if (options.terminal) openShellTerminal(ctx);
  return session;
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
    void showError(notice`MicroVM: ${file} has ${errors} problem(s) that keep the folder from opening as described; see the MicroVM log.`, 'Show Log')
      .then((choice) => choice && ctx.log.show());
    return false;
  }
  if (warnings > 0) {
    void showWarning(notice`MicroVM: ${warnings} setting(s) of ${file} are not used as written; see the MicroVM log.`, 'Show Log')
      .then((choice) => choice && ctx.log.show());
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
  const choice = await showInfo(notice`MicroVM: this workspace recommends ${ids.length} editor extension(s).`, 'Show Extensions');
  if (choice) await vscode.commands.executeCommand('workbench.extensions.action.showExtensionsWithIds', ids);
}

/** The user's settings as the engine's planner takes them. */
function planSettings(settings: Settings): PlanSettings {
  return {
    image: settings.image, defaultImages: settings.defaultImages, memoryMib: settings.memoryMib, cpus: settings.cpus, network: settings.network, symlinks: settings.symlinks,
    protect: [...new Set([...DEFAULT_PROTECT, ...settings.protectedNames])], git: settings.gitAccess,
    trustCertificates: settings.trustHostCertificates,
    allowedHosts: settings.allowedHosts, allowedHostsPresets: settings.allowedHostsPresets, trusted: vscode.workspace.isTrusted,
  };
}

function failed(ctx: Ctx, err: unknown, context: FailureContext = 'open'): undefined {
  const session = ctx.session;
  ctx.session = undefined;
  void session?.stop();
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

/** The volume named by an E_VOLUME that a failed guest mount raised, if that is the error. */
function damagedVolume(err: unknown): string | undefined {
  const volume = (err as { volume?: unknown }).volume;
  return isMicrovmError(err, 'E_VOLUME') && typeof volume === 'string' ? volume : undefined;
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

/** "MicroVM: Stop": ends the VM, its forwards and its terminals' processes. */
export async function stopVm(ctx: Ctx): Promise<void> {
  const session = ctx.session;
  ctx.session = undefined;
  await session?.stop();
  ctx.refreshPorts();
  ctx.setStatus('stopped');
  ctx.log.info('VM stopped');
}
