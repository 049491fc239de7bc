import { spaceOf } from '../disk-full';
import { MicrovmError } from '../errors';
import { Vm } from '../vm/vm';
import { Progress } from './progress';

/** Free space that counts as "freed" before the CLI resumes a VM paused on a full host disk. */
const RESUME_FREE_BYTES = 16 * 1024 * 1024;
const POLL_MS = 2000;

/**
 * A CLI user cannot call vm.resume(): on a full host disk the CLI says which file and
 * directory are full, then resumes the VM by itself once that file system has room again.
 */
export function resumeWhenSpaceFreed(vm: Vm, progress: Progress): () => void {
  let timer: NodeJS.Timeout | undefined;
  const stop = vm.onHostDiskFull((error: MicrovmError) => {
    const directory = (error as MicrovmError & { directory?: string }).directory;
    progress.note(
      `${error.message}\nmicrovm: the VM stays paused; it resumes by itself once ${directory ?? 'that file system'} has ${RESUME_FREE_BYTES / (1024 * 1024)} MiB free`,
    );
    clearInterval(timer);
    timer = setInterval(() => {
      if (directory && (spaceOf(directory)?.freeBytes ?? 0) < RESUME_FREE_BYTES) return;
      clearInterval(timer);
      progress.note('host disk space freed: resuming the VM');
      vm.resume().catch((err: Error) => progress.note(`cannot resume the VM: ${err.message}`));
    }, POLL_MS);
    timer.unref();
  });
  return () => {
    clearInterval(timer);
    stop();
  };
}
