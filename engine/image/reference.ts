import { MicrovmError } from '../errors';
import { parseDigest } from './digest';

/** A registry image reference after Docker's normalisation. */
export interface ImageReference {
  /** The registry host[:port] as written by the user (docker.io for Docker Hub). */
  registry: string;
  /** The repository path, with `library/` added for official Docker Hub images. */
  repository: string;
  tag?: string;
  digest?: string;
  /** registry/repository[:tag][@digest], the form used in the cache and in messages. */
  canonical: string;
}

const DOCKER_HUB = 'docker.io';
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const MAX_NAME_LENGTH = 255;

/**
 * Parses `[registry/]repo[:tag][@digest]` the way Docker does: a first component with a dot,
 * a colon or equal to `localhost` is a registry; otherwise the image is on Docker Hub, where
 * one-component names live under `library/`; no tag and no digest means `latest`.
 * The digest's syntax is checked here, before it can become part of a URL or path.
 */
export function parseReference(text: string): ImageReference {
  if (typeof text !== 'string' || text.length === 0 || text.length > 512)
    throw badRef(text, 'expected 1 to 512 characters');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest, `image reference ${JSON.stringify(text)}`);
    } catch (err) {
      throw badRef(
        text,
        `the digest ${JSON.stringify(digest)} is not sha256:<64 lowercase hex> or sha512:<128 lowercase hex>`,
        err,
      );
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw badRef(text, `the tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const [first = ''] = parts;
  if (parts.length > 1 && (/[.:]/.test(first) || first === 'localhost')) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) throw badRef(text, `the registry ${JSON.stringify(registry)} is not a valid host[:port]`);
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p))) {
    throw badRef(text, 'repository names are lowercase letters, digits and separators (. _ __ -), split by /');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME_LENGTH)
    throw badRef(text, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  if (!tag && !digest) tag = 'latest';
  const canonical = `${registry}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, tag, digest, canonical };
}

/** The host name of a registry without port or brackets, for loopback checks. */
export function registryHostname(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon === -1 ? registry : registry.slice(0, colon);
}

function badRef(text: unknown, problem: string, cause?: unknown): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_REF',
    `invalid image reference ${JSON.stringify(text)}: ${problem}; ` +
      'use the form [registry[:port]/]name[:tag][@sha256:<hex>], e.g. debian:12 or localhost:5000/team/app:1',
    { cause },
  );
}
