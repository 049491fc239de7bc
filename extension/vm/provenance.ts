import {
  clampToLimits, describeChange, hostLimits, openWorkspace, overLimits, pinDecision, pinned, readConfigFile, resolveConfig, ResolvedConfig,
  ResourceRequest, saveWorkspace, WorkspaceRecord,
} from '../../engine/index';
import type { Ctx } from '../context';
import { Settings } from '../config/settings';
import { notice } from '../ui/notice-text';
import { askModal } from '../ui/notify';
import { plainText } from '../ui/plain-text';

/**
 * The configuration this open uses, read on the host and resolved, with the user's leave
 * where it takes more from the host than last time: a changed resource, mount, port or
 * network setting is listed and asked about before it takes effect. `undefined` when the user
 * cancelled.
 */
export async function acceptConfig(ctx: Ctx, folder: string, settings: Settings):
  Promise<{ record: WorkspaceRecord; resolved: ResolvedConfig } | undefined> {
  const record = openWorkspace(folder);
  const file = readConfigFile(folder);
  const resolve = (f: typeof file) => resolveConfig({ folder, file: f ?? null, allowLocalEnv: settings.localEnvAllow });
  const resolved = resolve(file);
  if (!file || !resolved.raw) return { record, resolved };
  const decision = pinDecision(record, file, resolved.raw);
  if (decision.kind === 'use') {
    if (decision.reason !== 'unchanged') await saveWorkspace(pinned(record, file, resolved.raw));
    return { record, resolved };
  }
  const lines = decision.changes.map(describeChange);
  for (const line of lines) ctx.log.info(`${file.file} changed since the last open: ${line}`);
  const apply = 'Apply Changes';
  const previous = 'Open with Previous Settings';
  const choice = await askModal(
    notice`${file.file} changed since the last open: ${lines.length} change(s) to what the VM may take from this machine (memory, CPUs, disks, mounts, ports or network).`,
    plainText(lines.join('\n'), 2000), apply, previous);
  if (choice === apply) {
    await saveWorkspace(pinned(record, file, resolved.raw));
    return { record, resolved };
  }
  if (choice === previous && record.config) {
    const { file: name, digest, accepted } = record.config;
    return { record, resolved: resolve({ file: name, digest, text: JSON.stringify(accepted) }) };
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
