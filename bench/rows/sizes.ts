/** How many samples each row takes; --quick keeps the whole run well under 5 minutes. */
export interface Sizes {
  boots: number;
  roundTrips: number;
  warmupCalls: number;
  throughputBytes: number;
  throughputRuns: number;
}

const MIB = 1024 * 1024;

export function sizesFor(quick: boolean): Sizes {
  return quick
    ? { boots: 5, roundTrips: 200, warmupCalls: 20, throughputBytes: 16 * MIB, throughputRuns: 3 }
    : { boots: 15, roundTrips: 1000, warmupCalls: 20, throughputBytes: 64 * MIB, throughputRuns: 5 };
}
