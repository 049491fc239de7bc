import { MicrovmError } from '../errors';

/**
 * Which names a VM may reach through the egress proxy. `allowlist`: only names matching a
 * pattern; `learn`: every public name, each one recorded, so the list can be written from what
 * a workspace really used. Patterns are host names (`registry.npmjs.org`) or a leading `*.`
 * for every subdomain (`*.github.com`, which does not match `github.com` itself).
 */
export interface EgressPolicy {
  mode: 'allowlist' | 'learn';
  allow: readonly string[];
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A pattern in its canonical form (lower case, no trailing dot), or why it is not one. */
export function checkPattern(pattern: string): { pattern: string } | { error: string } {
  const text = pattern.trim().toLowerCase().replace(/\.$/, '');
  const wildcard = text.startsWith('*.');
  const name = wildcard ? text.slice(2) : text;
  if (!isHostName(name)) return { error: `${JSON.stringify(pattern)} is not a host name or *.domain pattern` };
  if (wildcard && !name.includes('.'))
    return {
      error: `${JSON.stringify(pattern)} would allow a whole top-level domain; name the domain (*.example.com)`,
    };
  return { pattern: wildcard ? `*.${name}` : name };
}

/** Canonical patterns, or E_BAD_OPTION naming every bad one. */
export function checkPatterns(patterns: readonly string[], where: string): string[] {
  const results = patterns.map(checkPattern);
  const errors = results.flatMap((r) => ('error' in r ? [r.error] : []));
  if (errors.length > 0)
    throw new MicrovmError(
      'E_BAD_OPTION',
      `${where}: ${errors.join('; ')}; write names such as registry.npmjs.org or *.github.com`,
    );
  return [...new Set(results.map((r) => (r as { pattern: string }).pattern))];
}

export function isHostName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  // An all-digit last label is an IPv4 address: the proxy takes names, never addresses.
  return labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels.at(-1) ?? '');
}

/** Lower case, no trailing dot; undefined when it is not a host name (an address, garbage). */
export function canonicalName(name: string): string | undefined {
  const text = name.toLowerCase().replace(/\.$/, '');
  return isHostName(text) ? text : undefined;
}

export function allows(policy: EgressPolicy, name: string): boolean {
  if (policy.mode === 'learn') return true;
  return policy.allow.some((pattern) =>
    pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern,
  );
}

/** The names package managers of each language reach, for a first allowlist. */
export const PRESETS: Record<string, readonly string[]> = {
  node: ['registry.npmjs.org', 'registry.yarnpkg.com', 'nodejs.org'],
  python: ['pypi.org', 'files.pythonhosted.org'],
  rust: ['crates.io', 'index.crates.io', 'static.crates.io', 'static.rust-lang.org'],
  go: ['proxy.golang.org', 'sum.golang.org', 'storage.googleapis.com'],
  java: ['repo.maven.apache.org', 'repo1.maven.org', 'plugins.gradle.org', 'services.gradle.org'],
  ruby: ['rubygems.org', 'index.rubygems.org'],
  github: [
    'github.com',
    'api.github.com',
    'codeload.github.com',
    'objects.githubusercontent.com',
    'raw.githubusercontent.com',
  ],
  dotnet: ['api.nuget.org', 'dotnetcli.azureedge.net', 'builds.dotnet.microsoft.com'],
  debian: ['deb.debian.org', 'security.debian.org'],
};
