/** Overlays `extra` on a KEY=VALUE list; later keys win, order of first appearance is kept. */
export function mergeEnv(base: string[], extra: Record<string, string>): string[] {
  const env = new Map<string, string>();
  for (const entry of base) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const [key, value] of Object.entries(extra)) env.set(key, value);
  return [...env].map(([key, value]) => `${key}=${value}`);
}
