import { MicrovmError } from '../errors';
import { Progress } from './progress';
import { parseWorkspaceFlags } from './workspace-args';
import { startWorkspace, workspaceSession } from './workspace-session';

/**
 * `microvm types --workspace-folder DIR`: opens the workspace as `run` does, waits for its
 * hooks and its type projection (the VM's node_modules declarations onto the folder's
 * `node_modules`), prints what was projected as one JSON line, and stops the VM. Exit 0
 * when every node_modules volume was projected, 1 when one was not (the reason on stderr).
 */
export async function workspaceTypesCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'types', { vm: true, config: true });
  if (!flags.typeProjection)
    throw new MicrovmError(
      'E_BAD_OPTION',
      'microvm types: --no-type-projection asks for no projection, which is all this command does; leave it out',
    );
  const progress = new Progress();
  const { session } = await workspaceSession(flags, progress);
  try {
    await startWorkspace(session, progress);
    const run = await session.typesSettled();
    const projections = (run?.results ?? []).map(({ hostDir, declarations, packageJsons, bytes, ms }) => ({
      hostDir,
      declarations,
      packageJsons,
      bytes,
      ms,
    }));
    const failures = (run?.failures ?? []).map(({ guestDir, error }) => ({
      guestDir,
      code: (error as { code?: string }).code ?? 'error',
      message: error.message,
    }));
    const outcome = run && failures.length === 0 ? 'success' : 'error';
    if (!run) progress.note('no volume covers a node_modules in the shared folder: nothing to project');
    process.stdout.write(`${JSON.stringify({ outcome, projections, failures })}\n`);
    return outcome === 'success' ? 0 : 1;
  } finally {
    await session.stop();
  }
}
