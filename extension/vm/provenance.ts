import {
  clampToLimits, describeChange, hostLimits, openWorkspace, overLimits, pinDecision, pinned, ResourceRequest, saveWorkspace, WorkspaceRecord,
} from '../../engine/index';
import type { Ctx } from '../context';
import { parseDevcontainer, ParsedDevcontainer } from '../config/devcontainer';
import { LoadedDevcontainer } from '../config/load';
import { Settings } from '../config/settings';
import { notice } from '../ui/notice-text';
import { askModal } from '../ui/notify';
import { plainText } from '../ui/plain-text';

/**
 * The configuration this open uses, with the user's leave where it takes more from the host
 * than last time: a changed resource, mount, port or network setting is listed and asked
 * about before it takes effect. `undefined` when the user cancelled.
 */
export async function acceptConfig(ctx: Ctx, folder: string, loaded: LoadedDevcontainer | undefined):
  Promise<{ record: WorkspaceRecord; config: (ParsedDevcontainer & { file: string }) | undefined } | undefined> {
  const record = openWorkspace(folder);
  if (!loaded) return { record, config: undefined };
  const decision = pinDecision(record, loaded, loaded.raw);
  if (decision.kind === 'use') {
    if (decision.reason !== 'unchanged') await saveWorkspace(pinned(record, loaded, loaded.raw));
    return { record, config: loaded };
  }
  const lines = decision.changes.map(describeChange);
  for (const line of lines) ctx.log.info(`${loaded.file} changed since the last open: ${line}`);
  const apply = 'Apply Changes';
  const previous = 'Open with Previous Settings';
  const choice = await askModal(
    notice`${loaded.file} changed since the last open: ${lines.length} change(s) to what the VM may take from this machine (memory, CPUs, disks, mounts, ports or network).`,
    plainText(lines.join('\n'), 2000), apply, previous);
  if (choice === apply) {
    await saveWorkspace(pinned(record, loaded, loaded.raw));
    return { record, config: loaded };
  }
  if (choice === previous && record.config) {
    const { file, accepted } = record.config;
    return { record, config: { file, ...parseDevcontainer(file, JSON.stringify(accepted)) } };
  }
  return undefined;
}

/**
 * The request cut to what this machine allows (half its RAM, its CPUs, a few bounded
 * volumes, or less by the user's settings), after asking when the configuration wants more.
 */
export async function acceptLimits<T extends ResourceRequest>(ctx: Ctx, settings: Settings, request: T): Promise<T | undefined> {
  const limits = hostLimits({ maxMemoryMib: settings.maxMemoryMib, maxCpus: settings.maxCpus });
  const over = overLimits(request, limits);
  if (over.length === 0) return request;
  for (const o of over) ctx.log.warn(`the workspace asks for more than this machine allows: ${o.message}`);
  const proceed = 'Open with the Allowed Amounts';
  const choice = await askModal(notice`The workspace asks for more than this machine allows.`,
    plainText(over.map((o) => o.message).join('\n'), 2000), proceed);
  return choice === proceed ? clampToLimits(request, limits) : undefined;
}
