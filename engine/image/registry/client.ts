import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isHostDiskFull } from '../../disk-full';
import { MicrovmError } from '../../errors';
import type { ContentStore } from '../content-store';
import { parseDigest } from '../digest';
import type { ImageReference } from '../reference';
import type { Descriptor } from '../schemas';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, MAX_JSON_DOCUMENT_BYTES } from '../types';
import { answerChallenge, noCredentials } from './auth';
import { parseChallenge } from './challenge';
import type { Credentials } from './credentials';
import { DEFAULT_RETRY, RetryableStatus, withRetries, type RetryPolicy } from './retry';
import type { RegistryEndpoint } from './mirrors';
import { DroppedConnection, readBody, registryScheme, sendRequest } from './transport';

const MAX_REDIRECTS = 5;
const ACCEPT_MANIFESTS = [...MANIFEST_MEDIA_TYPES, ...INDEX_MEDIA_TYPES].join(', ');

export interface RegistryClientOptions {
  credentials: Credentials | null;
  retry?: RetryPolicy;
  /** A mirror to pull from instead of the registry the reference names. */
  endpoint?: RegistryEndpoint;
  /** Aborting destroys the request in flight (its partial blob is removed) and stops the retries. */
  signal?: AbortSignal;
}

/**
 * Speaks the OCI distribution API for one repository. Authorization is only ever sent to
 * the registry's own origin: a redirect to blob storage on another host goes without it.
 */
export class RegistryClient {
  readonly origin: URL;
  /** The repository path on `origin` (a mirror may add a prefix). */
  private readonly repository: string;
  /** The host requests go to, as messages name it: the registry, or the mirror serving it. */
  private readonly host: string;
  private authorization: string | undefined;
  private readonly retry: RetryPolicy;

  constructor(
    readonly ref: ImageReference,
    private readonly options: RegistryClientOptions,
  ) {
    const host = ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
    this.origin = options.endpoint?.origin ?? new URL(`${registryScheme(ref.registry)}://${host}`);
    this.repository = options.endpoint?.repository ?? ref.repository;
    this.host = options.endpoint?.mirror ? `${options.endpoint.host} (mirror of ${ref.registry})` : ref.registry;
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /** The manifest or index `reference` (a tag or a digest) names, verified and stored. */
  async manifest(reference: string, store: ContentStore): Promise<Descriptor> {
    const what = `manifest ${this.ref.repository}:${reference} from ${this.host}`;
    const { content, contentType, headerDigest } = await withRetries(
      what,
      this.retry,
      async () => {
        const res = await this.get(`/v2/${this.repository}/manifests/${reference}`, { Accept: ACCEPT_MANIFESTS }, what);
        const body = await readBody(res, MAX_JSON_DOCUMENT_BYTES, what);
        return { content: body, contentType: mediaTypeOf(res), headerDigest: res.headers['docker-content-digest'] };
      },
      this.options.signal,
    );
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    if (reference.includes(':') && reference !== digest) throw digestMismatch(what, reference, digest);
    if (typeof headerDigest === 'string' && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
      throw digestMismatch(`${what} (Docker-Content-Digest header)`, headerDigest, digest);
    }
    const mediaType = contentType ?? declaredMediaType(content, what);
    await store.writeBlob([content], { digest, size: content.length, maxBytes: MAX_JSON_DOCUMENT_BYTES, what });
    return { mediaType, digest, size: content.length };
  }

  /** A nested manifest (from an index): fetched by digest, stored. */
  async childManifest(descriptor: Descriptor, store: ContentStore): Promise<void> {
    const stored = await this.manifest(descriptor.digest, store);
    if (stored.size !== descriptor.size) throw sizeMismatch(descriptor, stored.size);
  }

  /** Streams a blob into the store; a dropped connection is retried from the start. `signal` replaces the client's own. */
  async blob(
    descriptor: Descriptor,
    store: ContentStore,
    maxBytes: number,
    onBytes?: (bytes: number) => void,
    signal = this.options.signal,
  ): Promise<void> {
    parseDigest(descriptor.digest, `blob of ${this.ref.canonical}`);
    const what = `blob ${descriptor.digest} of ${this.ref.canonical}`;
    await withRetries(
      what,
      this.retry,
      async () => {
        const res = await this.get(`/v2/${this.repository}/blobs/${descriptor.digest}`, {}, what, signal);
        try {
          await store.writeBlob(res, { digest: descriptor.digest, size: descriptor.size, maxBytes, onBytes, what });
        } catch (err) {
          // A full host disk is not a dropped connection: another try would only fill it again.
          if (
            !res.complete &&
            !isHostDiskFull(err) &&
            !(err instanceof MicrovmError && err.code === 'E_IMAGE_DIGEST' && /larger than/.test(err.message))
          ) {
            throw new DroppedConnection(`the connection dropped during ${what}: ${(err as Error).message}`);
          }
          throw err;
        }
      },
      signal,
    );
  }

  /** GET with authentication (answering one challenge) and redirects; any non-2xx becomes an error. */
  private async get(
    pathname: string,
    headers: Record<string, string>,
    what: string,
    signal = this.options.signal,
  ): Promise<IncomingMessage> {
    let res = await this.followRedirects(new URL(pathname, this.origin), headers, signal);
    if (res.statusCode === 401) {
      const challenge = parseChallenge(res.headers['www-authenticate']);
      res.resume();
      if (!challenge) throw noCredentials(this.host, this.repository);
      const hadAuthorization = this.authorization !== undefined;
      this.authorization = await answerChallenge(
        challenge,
        this.repository,
        this.host,
        this.options.credentials,
        signal,
      );
      if (hadAuthorization && challenge.scheme === 'basic') throw this.denied(401);
      res = await this.followRedirects(new URL(pathname, this.origin), headers, signal);
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    res.resume();
    if (status === 401 || status === 403) throw this.denied(status);
    if (status === 404) {
      throw new MicrovmError(
        'E_IMAGE_NOT_FOUND',
        `${what}: not found (HTTP 404); check the name and tag of ${this.ref.canonical}`,
      );
    }
    if (status >= 500 || status === 429) throw new RetryableStatus(status, `${what}: HTTP ${status}`);
    throw new MicrovmError('E_REGISTRY_PROTOCOL', `${what}: unexpected HTTP ${status} from ${this.host}`);
  }

  private async followRedirects(
    start: URL,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<IncomingMessage> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.origin.origin;
      const sent = { ...headers, ...(sameOrigin && this.authorization ? { Authorization: this.authorization } : {}) };
      const res = await sendRequest(url, { headers: sent, signal });
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location) return res;
      res.resume();
      if (hop >= MAX_REDIRECTS)
        throw new MicrovmError(
          'E_REGISTRY_PROTOCOL',
          `${this.host} redirected more than ${MAX_REDIRECTS} times (last to ${url.origin})`,
        );
      const next = new URL(location, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:') {
        throw new MicrovmError(
          'E_REGISTRY_PROTOCOL',
          `${this.host} redirected from HTTPS to ${next.protocol} (${next.origin}); refusing the downgrade`,
        );
      }
      url = next;
    }
  }

  private denied(status: number): MicrovmError {
    const using = this.options.credentials
      ? 'with the stored credentials'
      : 'anonymously (no credentials are stored for it)';
    return new MicrovmError(
      'E_REGISTRY_AUTH',
      `access to ${this.ref.canonical} on ${this.host} was denied ${using} (HTTP ${status}): the repository is private or does not exist; ` +
        `run \`docker login ${this.options.endpoint?.host ?? this.ref.registry}\` with an account that can pull it, then pull again`,
    );
  }
}

function mediaTypeOf(res: IncomingMessage): string | undefined {
  const type = (res.headers['content-type'] ?? '').split(';', 1)[0]?.trim();
  return type && type !== 'application/json' && type !== 'text/plain' && type !== 'application/octet-stream'
    ? type
    : undefined;
}

/** A registry that sends no specific Content-Type: take the document's own mediaType field. */
function declaredMediaType(content: Buffer, what: string): string {
  try {
    const value = (JSON.parse(content.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof value === 'string') return value;
  } catch {
    /* reported below */
  }
  throw new MicrovmError(
    'E_IMAGE_INVALID',
    `${what} has neither a manifest Content-Type nor a mediaType field; the registry answer is not an image manifest`,
  );
}

function digestMismatch(what: string, expected: string, actual: string): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_DIGEST',
    `digest mismatch for ${what}: expected ${expected}, got ${actual}; the registry served other bytes than asked for; nothing was stored`,
  );
}

function sizeMismatch(descriptor: Descriptor, actual: number): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_INVALID',
    `manifest ${descriptor.digest} is ${actual} bytes but its index declares ${descriptor.size}; the image is malformed`,
  );
}
