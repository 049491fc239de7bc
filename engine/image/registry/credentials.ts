import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { MicrovmError } from '../../errors';

export type Credentials =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'identity-token'; username: string; token: string }
  | { kind: 'registry-token'; token: string };

const MAX_CONFIG_BYTES = 1024 * 1024;
const authEntry = z
  .object({
    auth: z.string().max(16384).optional(),
    username: z.string().max(4096).optional(),
    password: z.string().max(16384).optional(),
    identitytoken: z.string().max(16384).optional(),
    registrytoken: z.string().max(16384).optional(),
  })
  .passthrough();
const dockerConfig = z
  .object({
    auths: z.record(authEntry).optional(),
    credsStore: z.string().optional(),
    credHelpers: z.record(z.string()).optional(),
  })
  .passthrough();

/** $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG || path.join(os.homedir(), '.docker'), 'config.json');
}

/**
 * The credentials `docker login` stored for a registry in config.json's `auths`. Keys may be
 * a bare host, a URL, or (for Docker Hub) https://index.docker.io/v1/. Credential helpers
 * (credsStore, credHelpers) are not run: they would execute a host program.
 */
export function credentialsFor(registry: string, file = dockerConfigPath()): Credentials | null {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) return null;
  if (stat.size > MAX_CONFIG_BYTES)
    throw badConfig(file, `it is ${stat.size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit`);
  let parsed: z.infer<typeof dockerConfig>;
  try {
    parsed = dockerConfig.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (err) {
    throw badConfig(file, (err as Error).message.slice(0, 200));
  }
  const wanted = registry === 'docker.io' ? ['docker.io', 'index.docker.io', 'registry-1.docker.io'] : [registry];
  for (const [key, entry] of Object.entries(parsed.auths ?? {})) {
    if (!wanted.includes(normaliseKey(key))) continue;
    if (entry.registrytoken) return { kind: 'registry-token', token: entry.registrytoken };
    let { username, password } = entry;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw badConfig(file, `auths["${key}"].auth is not base64 of "user:password"`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    if (entry.identitytoken)
      return { kind: 'identity-token', username: username ?? '<token>', token: entry.identitytoken };
    if (username !== undefined && password !== undefined) return { kind: 'basic', username, password };
  }
  return null;
}

function normaliseKey(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

function badConfig(file: string, problem: string): MicrovmError {
  return new MicrovmError(
    'E_REGISTRY_AUTH',
    `cannot read registry credentials from ${file}: ${problem}; fix or remove the file (or run docker login again)`,
  );
}
