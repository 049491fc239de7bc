/** How many samples each row takes; --quick keeps the whole run well under 5 minutes. */
export interface Sizes {
  boots: number;
  roundTrips: number;
  warmupCalls: number;
  throughputBytes: number;
  throughputRuns: number;
  /** Cold bakes (each into a fresh snapshots directory) and raw boots beside them. */
  coldBakes: number;
  /** Image.build calls that find their snapshot. */
  cacheHitBakes: number;
  /** acquire() calls that find an idle VM. */
  idleAcquires: number;
  /** acquire() calls that restore from the snapshot, and raw QEMU restores beside them. */
  restores: number;
  /** Idle pooled VMs measured together for the N-VM memory rows. */
  memoryVms: number;
  /** Bytes downloaded through a forward per run, and runs. */
  forwardBytes: number;
  forwardRuns: number;
  /** Connections (connect to first response byte) through a forward. */
  forwardConnects: number;
  /** vm.writeFile / vm.readFile calls of FILE_BYTES each (and host fs calls beside them). */
  fileRuns: number;
  /** Files the small-file workload creates, stats and reads per sample, and samples per place. */
  smallFiles: number;
  smallFileRuns: number;
  /** Cold pulls of the ~50 MB registry image (and skopeo copies beside them). */
  pulls: number;
  /** Addresses added under a connect() loop (netguard block window), and connect() batches. */
  netguardWindows: number;
  netguardOverheadSamples: number;
  netguardOverheadBatch: number;
  /** Connections and streams through the egress proxy (and as many direct), MiB per stream. */
  egressConnects: number;
  egressStreams: number;
  egressMib: number;
  /** Downloads by a guest in each network mode (allowlist, outbound), and batches of 10 connects timed in each. */
  egressGuestDownloads: number;
  egressGuestConnects: number;
  /** Dockerfile builds: cold (empty builder cache), cache-hit lookups, late-step rebuilds. */
  builds: { cold: number; hits: number; rebuilds: number };
  /** Host edits timed to the guest's inotify event (and to a host fs.watch beside each). */
  eventSamples: number;
  /** Reattaches to a running workspace supervisor, and cold `up`s of the same workspace beside them. */
  reattach: { attaches: number; coldOpens: number };
  /** Cold `npm install` + `npm test` runs of the express-like app in a workspace VM (and as many on the host). */
  expressRuns: number;
  /**
   * Compose workspace (app + db VMs): cold and warm opens of each kind; rounds of the traffic
   * rows (each round runs every path once), PINGs and connects per round, SETs per round of
   * setBytes each.
   */
  compose: { opens: number; rounds: number; roundTrips: number; connects: number; sets: number; setBytes: number };
}

/** The agent's per-call file limit: vm.writeFile / vm.readFile carry at most 4 MiB. */
export const FILE_BYTES = 4 * 1024 * 1024;

const MIB = 1024 * 1024;

export function sizesFor(quick: boolean): Sizes {
  return quick
    ? {
        boots: 5,
        roundTrips: 200,
        warmupCalls: 20,
        throughputBytes: 16 * MIB,
        throughputRuns: 3,
        coldBakes: 3,
        cacheHitBakes: 20,
        idleAcquires: 200,
        restores: 8,
        memoryVms: 4,
        forwardBytes: 16 * MIB,
        forwardRuns: 3,
        forwardConnects: 30,
        fileRuns: 10,
        smallFiles: 2000,
        smallFileRuns: 3,
        pulls: 2,
        netguardWindows: 30,
        netguardOverheadSamples: 10,
        netguardOverheadBatch: 1000,
        egressConnects: 50,
        egressStreams: 3,
        egressMib: 64,
        egressGuestDownloads: 5,
        egressGuestConnects: 10,
        builds: { cold: 1, hits: 10, rebuilds: 1 },
        eventSamples: 20,
        reattach: { attaches: 20, coldOpens: 2 },
        expressRuns: 2,
        compose: { opens: 2, rounds: 2, roundTrips: 200, connects: 50, sets: 2, setBytes: 16 * MIB },
      }
    : {
        boots: 15,
        roundTrips: 1000,
        warmupCalls: 20,
        throughputBytes: 64 * MIB,
        throughputRuns: 5,
        coldBakes: 8,
        cacheHitBakes: 100,
        idleAcquires: 1000,
        restores: 25,
        memoryVms: 8,
        forwardBytes: 64 * MIB,
        forwardRuns: 5,
        forwardConnects: 100,
        fileRuns: 30,
        smallFiles: 10_000,
        smallFileRuns: 3,
        pulls: 5,
        netguardWindows: 200,
        netguardOverheadSamples: 30,
        netguardOverheadBatch: 1000,
        egressConnects: 300,
        egressStreams: 5,
        egressMib: 256,
        egressGuestDownloads: 15,
        egressGuestConnects: 20,
        builds: { cold: 3, hits: 30, rebuilds: 3 },
        eventSamples: 60,
        reattach: { attaches: 100, coldOpens: 5 },
        expressRuns: 4,
        compose: { opens: 3, rounds: 3, roundTrips: 200, connects: 50, sets: 3, setBytes: 32 * MIB },
      };
}
