import { MicrovmError } from '../../errors';
import type { Challenge } from './challenge';
import type { Credentials } from './credentials';
import { readBody, sendRequest } from './transport';

const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

/**
 * The Authorization value that answers a registry's challenge: Basic with the stored
 * credentials, or a Bearer token from the challenge's realm (anonymous when there are no
 * credentials). The realm may be another host; that is where Docker sends credentials too.
 */
export async function answerChallenge(
  challenge: Challenge,
  repository: string,
  registry: string,
  credentials: Credentials | null,
  signal?: AbortSignal,
): Promise<string> {
  if (challenge.scheme === 'basic') {
    if (credentials?.kind !== 'basic') throw noCredentials(registry, repository);
    return basic(credentials.username, credentials.password);
  }
  if (challenge.scheme !== 'bearer' || !challenge.params.realm) {
    throw new MicrovmError(
      'E_REGISTRY_PROTOCOL',
      `${registry} asked for an unsupported authentication (${challenge.scheme}, realm ${JSON.stringify(challenge.params.realm)}); only Basic and Bearer are supported`,
    );
  }
  if (credentials?.kind === 'registry-token') return `Bearer ${credentials.token}`;
  let realm: URL;
  try {
    realm = new URL(challenge.params.realm);
  } catch {
    throw new MicrovmError(
      'E_REGISTRY_PROTOCOL',
      `${registry} gave an invalid token realm ${JSON.stringify(challenge.params.realm)}`,
    );
  }
  const scope = challenge.params.scope ?? `repository:${repository}:pull`;
  const token =
    credentials?.kind === 'identity-token'
      ? await refreshToken(realm, challenge.params.service, scope, credentials.token, registry, signal)
      : await fetchToken(realm, challenge.params.service, scope, credentials, registry, signal);
  return `Bearer ${token}`;
}

async function fetchToken(
  realm: URL,
  service: string | undefined,
  scope: string,
  credentials: Credentials | null,
  registry: string,
  signal?: AbortSignal,
): Promise<string> {
  const url = new URL(realm);
  if (service) url.searchParams.set('service', service);
  url.searchParams.set('scope', scope);
  const headers: Record<string, string> = {};
  if (credentials?.kind === 'basic') headers.Authorization = basic(credentials.username, credentials.password);
  return tokenFrom(await sendRequest(url, { headers, signal }), realm, registry, credentials !== null);
}

/** An identity token (from `docker login` with OAuth) is traded for an access token. */
async function refreshToken(
  realm: URL,
  service: string | undefined,
  scope: string,
  refresh: string,
  registry: string,
  signal?: AbortSignal,
): Promise<string> {
  const form = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: refresh,
    service: service ?? '',
    scope,
    client_id: 'microvm',
  });
  const res = await sendRequest(realm, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: Buffer.from(form.toString()),
    signal,
  });
  return tokenFrom(res, realm, registry, true);
}

async function tokenFrom(
  res: Awaited<ReturnType<typeof sendRequest>>,
  realm: URL,
  registry: string,
  hadCredentials: boolean,
): Promise<string> {
  const body = await readBody(res, MAX_TOKEN_RESPONSE_BYTES, `the token response from ${realm.origin}`);
  if (res.statusCode === 401 || res.statusCode === 403) {
    throw new MicrovmError(
      'E_REGISTRY_AUTH',
      hadCredentials
        ? `the token service ${realm.origin} rejected the credentials for ${registry} (HTTP ${res.statusCode}); run docker login ${registry} again`
        : `the token service ${realm.origin} refused an anonymous token for ${registry} (HTTP ${res.statusCode}); log in with docker login ${registry}`,
    );
  }
  if (res.statusCode !== 200) {
    throw new MicrovmError(
      'E_REGISTRY_PROTOCOL',
      `the token service ${realm.origin} answered HTTP ${res.statusCode}; try again later`,
    );
  }
  let parsed: { token?: unknown; access_token?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
  } catch {
    throw new MicrovmError('E_REGISTRY_PROTOCOL', `the token service ${realm.origin} did not answer JSON`);
  }
  const token = typeof parsed.token === 'string' ? parsed.token : parsed.access_token;
  if (typeof token !== 'string' || token.length === 0 || /[\r\n]/.test(token)) {
    throw new MicrovmError('E_REGISTRY_PROTOCOL', `the token service ${realm.origin} answered without a usable token`);
  }
  return token;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export function noCredentials(registry: string, repository: string): MicrovmError {
  return new MicrovmError(
    'E_REGISTRY_AUTH',
    `${registry} requires credentials for ${repository}, and none are stored for it; ` +
      `run \`docker login ${registry}\` (or add an "auths" entry for ${registry} to ~/.docker/config.json) and pull again`,
  );
}
