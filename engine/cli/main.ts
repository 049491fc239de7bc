import { engineInfo } from '../info';
import { MicrovmError } from '../errors';
import { runCommand } from './run';
import { shellCommand } from './shell';

const USAGE = `usage: microvm <command> [options]

commands:
  run [options] [--] ARGV...   run a command in a fresh microVM; stdio is streamed and
                               the exit code is the guest command's
  shell [options]              an interactive shell in a fresh microVM
  info                         the accelerator, isolation, QEMU, kernel and agent, as JSON

options (run, shell):
  --image PATH     an OCI image layout directory (default: the embedded default image)
  --memory MIB     guest memory in MiB (default 256)
  --cpus N         virtual CPUs (default 1)
  --env NAME=VALUE set a variable in the guest (repeatable)
  --cwd DIR        working directory in the guest

environment:
  MICROVM_HOME     cache and state directory (default ~/.cache/microvm)
  MICROVM_ACCEL    force the accelerator: kvm, tcg or hvf

exit status: the guest command's; 128+N when a signal N ended it; 125 when the
engine failed (the message names the error code).`;

/** Exit status for a failure of the engine itself, as docker run uses. */
const ENGINE_FAILURE = 125;

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case 'run':
      return runCommand(rest);
    case 'shell':
      return shellCommand(rest);
    case 'info':
      process.stdout.write(JSON.stringify(await engineInfo(), null, 2) + '\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      throw new MicrovmError('E_BAD_OPTION', `unknown command ${JSON.stringify(command)}; see \`microvm --help\``);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof MicrovmError) process.stderr.write(`microvm: error [${err.code}]: ${err.message}\n`);
    else process.stderr.write(`microvm: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = ENGINE_FAILURE;
  },
);
