import { setTimeout as delay } from 'node:timers/promises';
import type { HealthCheck } from '../../compose/types';

export type HealthState = 'starting' | 'healthy' | 'unhealthy';

/** One run of the check: true when it exited 0 within its timeout; `output` is what it printed, for the log. */
export type HealthProbe = (test: string[], timeoutMs: number) => Promise<{ ok: boolean; output: string }>;

export interface HealthResult {
  state: 'healthy' | 'unhealthy';
  /** The failing checks' last output, for the message. */
  lastOutput: string;
  checks: number;
}

/**
 * Docker's health rules: during `start_period` a check runs every `start_interval` and a
 * failure does not count; afterwards every `interval`, and `retries` failures in a row make
 * the service unhealthy. One success makes it healthy. Stops early (unhealthy) when `stopped`
 * says the service is gone.
 */
export async function waitHealthy(
  check: HealthCheck,
  probe: HealthProbe,
  stopped: () => string | undefined,
  started = Date.now(),
): Promise<HealthResult> {
  let failures = 0;
  let checks = 0;
  let lastOutput = '';
  for (;;) {
    // As docker does, the first check comes one interval after the start.
    await delay(Date.now() - started < check.startPeriodMs ? check.startIntervalMs : check.intervalMs);
    const gone = stopped();
    if (gone) return { state: 'unhealthy', lastOutput: gone, checks };
    const inStartPeriod = Date.now() - started < check.startPeriodMs;
    const result = await probe(check.test, check.timeoutMs);
    checks++;
    if (result.ok) return { state: 'healthy', lastOutput: result.output, checks };
    lastOutput = result.output;
    if (!inStartPeriod && ++failures >= Math.max(1, check.retries)) return { state: 'unhealthy', lastOutput, checks };
  }
}
