import type { SessionEvents } from '../../engine';

/** Session events for tests: log lines, exits and hook failures land in `logs`; the rest is dropped. */
export function loggingEvents(logs: string[]): SessionEvents {
  return {
    log: (line) => logs.push(line),
    baking: () => undefined,
    booting: () => undefined,
    portsChanged: () => undefined,
    exited: (error) => logs.push(`exited: ${error.message}`),
    output: () => undefined,
    hookFailed: (d) => logs.push(`hook failed: ${d}`),
  };
}
