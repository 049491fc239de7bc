import { MicrovmError } from '../../errors';
import { parseReference, type ImageReference } from '../reference';
import { registryScheme } from './transport';

/**
 * Registry mirrors, as containers' registries.conf `[[registry.mirror]]` and Docker's
 * `registry-mirrors` have them: registry host -> mirror locations, tried in order before the
 * registry itself. A reference keeps its own name (docker.io/library/debian:bookworm) whichever
 * endpoint served it, so the store, the records and the cache keys do not depend on mirrors.
 */
export type RegistryMirrors = Readonly<Record<string, readonly string[]>>;

/** Where one pull is sent: a mirror, or the registry the reference names. */
export interface RegistryEndpoint {
  /** scheme://host[:port] requests go to. */
  origin: URL;
  /** The repository path on that host (a mirror may put a prefix before it). */
  repository: string;
  /** The host[:port] credentials are looked up for and messages name. */
  host: string;
  mirror: boolean;
}

/** The environment variable that lists registry mirrors (`docker.io=http://127.0.0.1:5000,...`). */
export const MIRRORS_ENV = 'MICROVM_REGISTRY_MIRRORS';
const MAX_MIRRORS = 32;

/**
 * Parses `docker.io=http://127.0.0.1:5000,ghcr.io=https://mirror.example/ghcr` (a registry may
 * appear more than once: its mirrors are tried in that order). `from` names the source in errors.
 */
export function parseMirrorList(text: string, from: string = MIRRORS_ENV): RegistryMirrors {
  const mirrors: Record<string, string[]> = {};
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length > MAX_MIRRORS) throw badMirror(from, text, `at most ${MAX_MIRRORS} mirrors`);
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw badMirror(from, item, 'expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5000');
    const registry = item.slice(0, eq).trim();
    (mirrors[registry] ??= []).push(item.slice(eq + 1).trim());
  }
  return checkMirrors(mirrors, from);
}

/** The MICROVM_REGISTRY_MIRRORS text of a mirror table (parseMirrorList reads it back). */
export function formatMirrorList(mirrors: Readonly<Record<string, readonly string[]>>): string {
  return Object.entries(mirrors)
    .flatMap(([registry, urls]) => urls.map((url) => `${registry}=${url}`))
    .join(',');
}

/** Checks registry names and mirror URLs of an option or the environment; returns them normalised. */
export function checkMirrors(mirrors: Readonly<Record<string, readonly string[]>>, from: string): RegistryMirrors {
  const checked: Record<string, string[]> = {};
  for (const [registry, locations] of Object.entries(mirrors)) {
    const key = normaliseRegistry(registry, from);
    for (const location of locations) (checked[key] ??= []).push(mirrorUrl(location, from).href.replace(/\/$/, ''));
  }
  return checked;
}

/** The mirrors this process is told about in MICROVM_REGISTRY_MIRRORS (none when unset). */
export function mirrorsFromEnv(env: NodeJS.ProcessEnv = process.env): RegistryMirrors {
  const text = env[MIRRORS_ENV];
  return text ? parseMirrorList(text) : {};
}

/** The endpoints a pull of `ref` tries, mirrors first; the registry itself always comes last. */
export function endpointsFor(ref: ImageReference, mirrors: RegistryMirrors): RegistryEndpoint[] {
  const endpoints: RegistryEndpoint[] = (mirrors[ref.registry] ?? []).map((location) => {
    const url = new URL(location);
    const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
    return {
      origin: new URL(url.origin),
      repository: prefix ? `${prefix}/${ref.repository}` : ref.repository,
      host: url.host,
      mirror: true,
    };
  });
  const host = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
  endpoints.push({
    origin: new URL(`${registryScheme(ref.registry)}://${host}`),
    repository: ref.repository,
    host: ref.registry,
    mirror: false,
  });
  return endpoints;
}

function normaliseRegistry(registry: string, from: string): string {
  const problem = 'the key must be a registry host such as docker.io, ghcr.io or localhost:5000';
  let parsed: ImageReference;
  try {
    parsed = parseReference(`${registry}/probe`);
  } catch (err) {
    throw badMirror(from, registry, problem, err);
  }
  // "myhost/probe" is a Docker Hub repository, not a registry: Docker's naming needs a dot, a port or localhost.
  if (parsed.repository !== 'probe' && parsed.repository !== 'library/probe') throw badMirror(from, registry, problem);
  return parsed.registry;
}

function mirrorUrl(location: string, from: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(location) ? location : `https://${location}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw badMirror(from, location, 'not a URL', err);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badMirror(from, location, 'the scheme must be http or https');
  if (url.username || url.password || url.search || url.hash) {
    throw badMirror(
      from,
      location,
      'no credentials, query or fragment in a mirror URL (credentials come from ~/.docker/config.json for the mirror host)',
    );
  }
  return url;
}

function badMirror(from: string, value: string, problem: string, cause?: unknown): MicrovmError {
  return new MicrovmError('E_BAD_OPTION', `invalid registry mirror in ${from}: ${JSON.stringify(value)}: ${problem}`, {
    cause,
  });
}
