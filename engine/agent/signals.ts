import { MicrovmError } from '../errors';

/**
 * Linux signal numbers. The guest is always Linux, while the host may be macOS, where
 * several numbers differ, so the host's os.constants cannot be used here.
 */
const LINUX_SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** A signal by Linux number (`9`) or name (`'SIGKILL'`, `'KILL'`). */
export type SignalSpec = number | string;

export function linuxSignalNumber(signal: SignalSpec): number {
  if (typeof signal === 'number') {
    if (Number.isInteger(signal) && signal >= 1 && signal <= 64) return signal;
  } else {
    const name = signal.toUpperCase().startsWith('SIG') ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
    const number = LINUX_SIGNALS[name];
    if (number !== undefined) return number;
  }
  throw new MicrovmError(
    'E_BAD_OPTION',
    `unknown signal ${JSON.stringify(signal)}: use a name such as 'SIGTERM' or a number from 1 to 64`,
  );
}

export function linuxSignalName(number: number): string {
  const entry = Object.entries(LINUX_SIGNALS).find(([, value]) => value === number);
  return entry ? entry[0] : `SIG${number}`;
}
