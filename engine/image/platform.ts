import { MicrovmError, shown } from '../errors';
import type { Descriptor } from './schemas';

/** An image platform as the OCI image index names one: `linux/arm64`, `linux/arm/v7`. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's `process.arch` as the OCI spec (GOARCH) names it. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le' };
  return map[process.arch] ?? process.arch;
}

/** What a pull asks for when no platform is given: Linux on this host's architecture. */
export function hostPlatform(): Platform {
  return normalizePlatform({ os: 'linux', architecture: hostArchitecture() });
}

/**
 * `os/arch[/variant]`, or `arch` alone (Linux), as `docker --platform` reads it; names are
 * normalized as containerd does (aarch64 = arm64, x86_64 = amd64, arm64/v8 = arm64, arm = arm/v7).
 */
export function parsePlatform(text: string, where = 'platform'): Platform {
  const parts = text.trim().toLowerCase().split('/');
  const valid = parts.length <= 3 && parts.every((part) => /^[a-z0-9][a-z0-9_.-]*$/.test(part));
  if (!valid) {
    throw new MicrovmError(
      'E_BAD_OPTION',
      `${where} ${shown(text)} is not a platform; give OS/ARCH[/VARIANT], e.g. linux/amd64, linux/arm64 or linux/arm/v7`,
    );
  }
  const [os, architecture, variant] = parts.length === 1 ? ['linux', parts[0]!] : parts;
  return normalizePlatform({ os: os!, architecture: architecture!, ...(variant ? { variant } : {}) });
}

/** Whether `text` parses as a platform (for option schemas). */
export function isPlatformText(text: string): boolean {
  try {
    parsePlatform(text);
    return true;
  } catch {
    return false;
  }
}

/** containerd's normalization, so that `linux/aarch64` and `linux/arm64/v8` name the same platform. */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  switch (architecture) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'i386':
    case 'i686':
      architecture = '386';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = undefined;
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** `linux/arm64`, `linux/arm/v7`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/**
 * Whether an image of platform `offered` runs where `wanted` is asked for: same OS and
 * architecture, and the same variant, except that an arm variant runs older ones' images
 * (arm/v7 runs arm/v6) as containerd's matcher allows.
 */
export function platformMatches(wanted: Platform, offered: Platform): boolean {
  const a = normalizePlatform(wanted);
  const b = normalizePlatform(offered);
  if (a.os !== b.os || a.architecture !== b.architecture) return false;
  if (a.variant === b.variant) return true;
  return a.architecture === 'arm' && armLevel(b.variant) <= armLevel(a.variant);
}

function armLevel(variant: string | undefined): number {
  return Number(/^v(\d)$/.exec(variant ?? '')?.[1] ?? 0);
}

/**
 * The manifest of `candidates` (an image index's entries) for `wanted`: an exact match
 * first, else the newest compatible arm variant. An index of one entry without a platform
 * is taken as it is (its config is checked later). Entries of platform `unknown/unknown`
 * (buildx's attestations) are never candidates. No match: E_PLATFORM_MISSING listing what
 * the index offers.
 */
export function selectPlatformManifest(candidates: Descriptor[], wanted: Platform, where: string): Descriptor {
  if (candidates.length === 1 && candidates[0] && !candidates[0].platform) return candidates[0];
  const matching = candidates.filter((d) => d.platform && platformMatches(wanted, d.platform));
  const exact = matching.find(
    (d) => d.platform && formatPlatform(normalizePlatform(d.platform)) === formatPlatform(normalizePlatform(wanted)),
  );
  const best = exact ?? matching.sort((a, b) => armLevel(b.platform?.variant) - armLevel(a.platform?.variant))[0];
  if (best) return best;
  // An index of only variant builds (amd64/v2, say): the lowest variant of the architecture asked for.
  const sameArch = candidates
    .filter((d) => d.platform && sameOsAndArch(wanted, d.platform))
    .sort((a, b) => (a.platform?.variant ?? '').localeCompare(b.platform?.variant ?? ''))[0];
  if (sameArch && !normalizePlatform(wanted).variant) return sameArch;
  const offered = candidates.flatMap((d) =>
    d.platform && d.platform.os !== 'unknown' ? [formatPlatform(normalizePlatform(d.platform))] : [],
  );
  throw platformMissing(where, wanted, [...new Set(offered)]);
}

function sameOsAndArch(a: Platform, b: Platform): boolean {
  const [x, y] = [normalizePlatform(a), normalizePlatform(b)];
  return x.os === y.os && x.architecture === y.architecture;
}

/**
 * Refuses an image whose config says another platform than the one asked for: a
 * single-platform manifest (or an index entry that lied) for the wrong OS or architecture.
 * The variant is not compared here (the index chose it, and configs often omit or differ in
 * it); a config that names no architecture is taken as it is.
 */
export function checkConfigPlatform(
  config: { os?: string; architecture?: string; variant?: string },
  wanted: Platform,
  where: string,
): void {
  if (!config.architecture) return;
  const offered: Platform = {
    os: config.os ?? 'linux',
    architecture: config.architecture,
    ...(config.variant ? { variant: config.variant } : {}),
  };
  if (!sameOsAndArch(wanted, offered))
    throw platformMissing(where, wanted, [formatPlatform(normalizePlatform(offered))]);
}

function platformMissing(where: string, wanted: Platform, available: string[]): MicrovmError<'E_PLATFORM_MISSING'> {
  const name = formatPlatform(normalizePlatform(wanted));
  const offers = available.length > 0 ? available.map((p) => shown(p)).join(', ') : 'no platform it names';
  return new MicrovmError(
    'E_PLATFORM_MISSING',
    `${where} has no image for ${name} (it has ${offers}); ask for one of those with --platform ` +
      `(the platform option), or use an image built for ${name}`,
    { details: { wanted: name, available } },
  );
}
