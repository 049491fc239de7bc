import { MicrovmError } from '../errors';
import { PublishSpec } from '../forward/types';

/** Parses `HOST:GUEST` (or `GUEST`, meaning the same port on the host). */
export function parsePublish(value: string): PublishSpec {
  const match = /^(?:(\d{1,5}):)?(\d{1,5})$/.exec(value);
  const hostPort = match ? Number(match[1] ?? match[2]) : NaN;
  const guestPort = match ? Number(match[2]) : NaN;
  if (!match || hostPort > 65535 || guestPort < 1 || guestPort > 65535) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `invalid --publish value ${JSON.stringify(value)}: expected HOST:GUEST with TCP ports (HOST 0 picks a free port), e.g. 8080:3000`,
    );
  }
  return { hostPort, guestPort };
}
