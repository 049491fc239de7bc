import { onAbort } from '../abort';
import { Progress } from './progress';
import { parseWorkspaceFlags } from './workspace-args';
import { workspaceSession } from './workspace-session';

/**
 * `microvm build --workspace-folder DIR`: the workspace's image as opening it would make it
 * (its Dockerfile built and its features installed in the builder VM, the root disk and
 * snapshot baked), without starting the workspace. Stdout: one JSON line as the reference
 * CLI's `devcontainer build` prints, with the image's manifest digest.
 */
export async function buildCommand(args: string[], signal?: AbortSignal): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'build', { vm: true, config: true });
  const progress = new Progress();
  const { session } = await workspaceSession(flags, progress, signal);
  // Stopping the session aborts its pulls, builds and bake (Ctrl-C).
  const unlink = onAbort(signal, () => void session.stop());
  try {
    const image = await session.image();
    progress.finish();
    process.stdout.write(
      `${JSON.stringify({ outcome: 'success', imageName: [image.ref], imageDigest: image.manifestDigest })}\n`,
    );
    return 0;
  } finally {
    unlink();
    await session.stop();
  }
}
