import { ConfigChange, describeChange, OverLimit } from '../../engine/index';
import type { Ctx } from '../context';
import { notice } from '../ui/notice-text';
import { askModal } from '../ui/notify';
import { plainText } from '../ui/plain-text';

/**
 * The questions the engine puts when a workspace opens (engine/workspace/prepare.ts), as
 * modal dialogs: the details quote the configuration, so they are plain text.
 */
export async function askConfigChanged(
  ctx: Ctx,
  file: string,
  changes: ConfigChange[],
): Promise<'apply' | 'previous' | 'cancel'> {
  const lines = changes.map(describeChange);
  for (const line of lines) ctx.log.info(`${file} changed since the last open: ${line}`);
  const apply = 'Apply Changes';
  const previous = 'Open with Previous Settings';
  const choice = await askModal(
    notice`${file} changed since the last open: ${lines.length} change(s) to what the VM may take from this machine (memory, CPUs, disks, mounts, ports or network).`,
    plainText(lines.join('\n'), 2000),
    apply,
    previous,
  );
  return choice === apply ? 'apply' : choice === previous ? 'previous' : 'cancel';
}

export async function askOverLimits(ctx: Ctx, over: OverLimit[]): Promise<boolean> {
  for (const o of over) ctx.log.warn(`the workspace asks for more than this machine allows: ${o.message}`);
  const proceed = 'Open with the Allowed Amounts';
  const choice = await askModal(
    notice`The workspace asks for more than this machine allows.`,
    plainText(over.map((o) => o.message).join('\n'), 2000),
    proceed,
  );
  return choice === proceed;
}
