import { checkPattern, PRESETS } from '../egress/policy';
import type { NetworkMode } from '../qemu/network';
import type { DetectedLanguage } from './language';
import { Problems, quote } from './problems';

/**
 * The workspace's network, decided from the user's settings and devcontainer.json's
 * `customizations.microvm` (`network`, `allowedHosts`). A configuration may always narrow what
 * the user allows; it may widen it (a looser mode, more hosts) only in a folder the user trusts:
 * a hostile repository must not be able to open its own way out.
 */
export interface EgressSettings {
  network: NetworkMode;
  /** `microvm.allowedHosts`: patterns beyond the presets. */
  allowedHosts?: readonly string[];
  /** `microvm.allowedHostsPresets` (default true): the package registries of the folder's languages, and GitHub. */
  presets?: boolean;
  /** The folder is trusted (VS Code's Workspace Trust; the CLI's folders are). */
  trusted?: boolean;
}

/** Strictest first: a configuration's mode applies when it is stricter, or when the folder is trusted. */
const STRICTNESS: NetworkMode[] = ['none', 'allowlist', 'learn', 'outbound'];

export function planEgress(
  settings: EgressSettings,
  customizations: Record<string, unknown>,
  languages: readonly DetectedLanguage[],
  problems: Problems,
): { network: NetworkMode; allow: string[] } {
  const own = (customizations.microvm ?? {}) as { network?: unknown; allowedHosts?: unknown };
  let network = settings.network;
  const at = '$.customizations.microvm';
  if (own.network !== undefined) {
    if (typeof own.network !== 'string' || !STRICTNESS.includes(own.network as NetworkMode)) {
      problems.add(
        'warning',
        'invalid-network',
        `${at}.network`,
        `network ${quote(own.network)} is not one of ${STRICTNESS.join(', ')}`,
        `the user's setting (${settings.network}) applies`,
      );
    } else if (STRICTNESS.indexOf(own.network as NetworkMode) <= STRICTNESS.indexOf(network) || settings.trusted) {
      network = own.network as NetworkMode;
    } else {
      problems.add(
        'warning',
        'network-not-widened',
        `${at}.network`,
        `network ${quote(own.network)} is looser than the user's setting ${quote(settings.network)}`,
        'the setting applies: trust the folder to let its configuration widen the network',
      );
    }
  }
  const allow = new Set<string>();
  for (const pattern of settings.allowedHosts ?? []) {
    const checked = checkPattern(pattern);
    if ('pattern' in checked) allow.add(checked.pattern);
    else
      problems.add(
        'warning',
        'invalid-allowed-host',
        'microvm.allowedHosts',
        checked.error,
        'that entry allows nothing',
      );
  }
  if (settings.presets !== false) {
    for (const name of presetsFor(languages)) allow.add(name);
  }
  if (own.allowedHosts !== undefined) {
    const list = Array.isArray(own.allowedHosts) ? own.allowedHosts : [];
    if (!Array.isArray(own.allowedHosts))
      problems.add(
        'warning',
        'invalid-allowed-host',
        `${at}.allowedHosts`,
        `allowedHosts is ${quote(own.allowedHosts)}, not a list of host names`,
        'ignored',
      );
    const wanted: string[] = [];
    list.forEach((entry, i) => {
      const checked = typeof entry === 'string' ? checkPattern(entry) : { error: `${quote(entry)} is not a host name` };
      if ('error' in checked)
        problems.add(
          'warning',
          'invalid-allowed-host',
          `${at}.allowedHosts[${i}]`,
          checked.error,
          'that entry allows nothing',
        );
      else if (!allow.has(checked.pattern)) wanted.push(checked.pattern);
    });
    if (settings.trusted) for (const name of wanted) allow.add(name);
    else if (wanted.length > 0 && network === 'allowlist') {
      problems.add(
        'warning',
        'hosts-not-allowed',
        `${at}.allowedHosts`,
        `the configuration asks to reach ${wanted.join(', ')}`,
        'not allowed: the folder is not trusted; trust it, or add them to microvm.allowedHosts',
      );
    }
  }
  return { network, allow: [...allow].sort() };
}

/** The presets of the detected languages, plus GitHub (most projects fetch something from it). */
export function presetsFor(languages: readonly DetectedLanguage[]): string[] {
  const names = new Set<string>(PRESETS.github);
  for (const { language } of languages) {
    for (const name of PRESETS[language] ?? []) names.add(name);
  }
  return [...names];
}
