import { linuxSignalNumber } from '../agent/signals';
import { MicrovmError } from '../errors';
import { configMismatch, wantedConfigFile } from '../workspace/config-choice';
import { ClientProcess, SupervisorClient } from '../supervisor/client';
import { terminalSize } from './stdio';
import { parseWorkspaceFlags } from './workspace-args';

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/**
 * `microvm exec --workspace-folder DIR CMD...`: CMD in the running workspace VM, through its
 * supervisor, as the reference CLI runs it: in the workspace folder, as remoteUser, with
 * remoteEnv. A pty when stdin and stdout are terminals (raw mode, resizes followed), else
 * pipes; signals to this process go to CMD; the exit status is CMD's (128+N for signal N).
 */
export async function execCommand(args: string[]): Promise<number> {
  const flags = parseWorkspaceFlags(args, 'exec', { argv: true, bareArgv: true, config: true });
  if (flags.argv.length === 0)
    throw new MicrovmError(
      'E_BAD_OPTION',
      'microvm exec needs a command, e.g. `microvm exec --workspace-folder . ls -la`',
    );
  const client = await SupervisorClient.connect(flags.folder, { kind: 'cli', start: false });
  if (!client) throw notRunning(flags.folder);
  try {
    if (client.hello.state !== 'running') throw notRunning(flags.folder);
    // --config names the configuration the VM must run: another one's VM is not this workspace's.
    if (flags.configFile !== undefined) {
      const mismatch = configMismatch(
        flags.folder,
        client.hello.configFile,
        wantedConfigFile(flags.folder, flags.configFile),
      );
      if (mismatch) throw mismatch;
    }
    const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    const proc = await client.spawn({
      argv: flags.argv,
      tty,
      persistent: false,
      ...(tty ? { size: terminalSize(), env: { TERM: process.env.TERM || 'xterm-256color' } } : {}),
    });
    return await streamProcess(proc, tty);
  } finally {
    client.close();
  }
}

function notRunning(folder: string): MicrovmError {
  return new MicrovmError(
    'E_SUPERVISOR',
    `the workspace VM of ${folder} is not running, so there is nothing to exec in; start it with \`microvm up --workspace-folder ${JSON.stringify(folder)}\``,
  );
}

async function streamProcess(proc: ClientProcess, tty: boolean): Promise<number> {
  const { stdin, stdout, stderr } = process;
  proc.onOutput((stream, data) => (stream === 'stderr' ? stderr : stdout).write(data));
  const onSignal = (signal: NodeJS.Signals) => void proc.signal(signal).catch(() => undefined);
  const onResize = () => {
    const size = terminalSize();
    void proc.resize(size.rows, size.cols).catch(() => undefined);
  };
  const onData = (chunk: Buffer) => {
    stdin.pause();
    proc.write(chunk).then(
      () => stdin.resume(),
      () => stdin.resume(),
    );
  };
  const onEnd = () => void proc.closeStdin().catch(() => undefined);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
  if (tty) {
    stdin.setRawMode(true);
    stdout.on('resize', onResize);
  }
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  try {
    const result = await proc.exited;
    if (result.error) throw new MicrovmError('E_SUPERVISOR', `${result.error}; the command's end is unknown`);
    return result.signal ? 128 + linuxSignalNumber(result.signal) : result.exitCode;
  } finally {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
    stdout.off('resize', onResize);
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    if (tty) stdin.setRawMode(false);
    stdin.pause();
    stdin.unref?.();
  }
}
