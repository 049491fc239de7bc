import { MicrovmError, shown } from '../errors';

/**
 * The install order, round by round as the reference CLI computes it (spec digest §4.4): a
 * round is every feature whose hard dependencies (dependsOn) are installed and whose soft
 * ones (installsAfter, when present in the set at all) are too; of those, only the ones with
 * the highest overrideFeatureInstallOrder priority go in this round, sorted by id, tag and
 * options. An empty round means a cycle. Pure: tested without a registry.
 */
export interface OrderNode {
  /** Identity: the same source with the same options is the same feature. */
  key: string;
  /** The reference as written, for messages. */
  userId: string;
  /** Keys soft dependencies and the override list match: the resource without version, and legacy ids. */
  softKeys: string[];
  /** Node keys this one must come after. */
  dependsOn: string[];
  /** Soft keys this one comes after when a feature with that key is installed at all. */
  installsAfter: string[];
  /** Sorts a round: resource, then tag, then options, then digest. */
  sortKey: string;
}

/** `override`: soft keys, first = installed first (highest priority). */
export function installOrder<T extends OrderNode>(nodes: readonly T[], override: readonly string[]): T[] {
  const priority = new Map(nodes.map((n) => [n.key, 0]));
  override.forEach((key, i) => {
    for (const node of nodes)
      if (node.softKeys.includes(key))
        priority.set(node.key, Math.max(priority.get(node.key) ?? 0, override.length - i));
  });
  const present = new Set(nodes.flatMap((n) => n.softKeys));
  const installed: T[] = [];
  const installedKeys = new Set<string>();
  const installedSoft = new Set<string>();
  let left = [...nodes];
  while (left.length > 0) {
    const ready = left.filter(
      (n) =>
        n.dependsOn.every((d) => installedKeys.has(d)) &&
        n.installsAfter.every((s) => !present.has(s) || installedSoft.has(s) || n.softKeys.includes(s)),
    );
    if (ready.length === 0) throw cycleError(left);
    const top = Math.max(...ready.map((n) => priority.get(n.key) ?? 0));
    const round = ready
      .filter((n) => (priority.get(n.key) ?? 0) === top)
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    for (const node of round) {
      installed.push(node);
      installedKeys.add(node.key);
      for (const key of node.softKeys) installedSoft.add(key);
    }
    left = left.filter((n) => !installedKeys.has(n.key));
  }
  return installed;
}

function cycleError(left: readonly OrderNode[]): MicrovmError {
  const byKey = new Map(left.map((n) => [n.key, n]));
  const waits = left.map((n) => {
    const on = [
      ...n.dependsOn.filter((d) => byKey.has(d)).map((d) => byKey.get(d)?.userId as string),
      ...n.installsAfter.filter((s) => left.some((o) => o !== n && o.softKeys.includes(s))),
    ];
    return `${shown(n.userId)} waits for ${on.map((o) => shown(o)).join(' and ')}`;
  });
  return new MicrovmError(
    'E_FEATURE_ORDER',
    `the features' install order has a cycle: ${waits.join('; ')}; remove one of these dependsOn/installsAfter links (or the feature) to break it`,
  );
}
