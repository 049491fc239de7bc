import * as fs from 'node:fs';
import * as path from 'node:path';
import { MicrovmError, shown } from '../errors';
import { parseReference, type ImageReference } from '../image/reference';

/**
 * A feature reference as devcontainer.json writes it (spec digest §4.5): an OCI reference
 * (`ghcr.io/devcontainers/features/node:1`), a local folder (`./features/x`, relative to the
 * configuration's folder and under `<workspace>/.devcontainer/`), or a deprecated short id
 * (`node`, `golang`, ...) that stands for a devcontainers feature. Tarball URLs are refused.
 */
export type FeatureRef =
  | { kind: 'oci'; userId: string; ref: ImageReference; resource: string }
  | { kind: 'local'; userId: string; dir: string };

export interface RefContext {
  /** The opened folder (real path). */
  folder: string;
  /** The folder holding devcontainer.json (real path). */
  configDir: string;
}

const SHORT_IDS = new Set([
  'aws-cli',
  'azure-cli',
  'desktop-lite',
  'docker-in-docker',
  'docker-from-docker',
  'dotnet',
  'git',
  'git-lfs',
  'github-cli',
  'java',
  'kubectl-helm-minikube',
  'node',
  'powershell',
  'python',
  'ruby',
  'rust',
  'sshd',
  'terraform',
]);
const RENAMED: Readonly<Record<string, { id: string; options?: Record<string, boolean> }>> = {
  golang: { id: 'go' },
  common: { id: 'common-utils' },
  gradle: { id: 'java', options: { installGradle: true } },
  maven: { id: 'java', options: { installMaven: true } },
  jupyterlab: { id: 'python', options: { installJupyterlab: true } },
};

/** The reference, and the options a deprecated short id implies (`maven` is java with installMaven). */
export function parseFeatureRef(
  userId: string,
  where: RefContext,
): { ref: FeatureRef; implied: Record<string, boolean> } {
  if (/^https?:\/\//i.test(userId)) {
    throw refError(
      userId,
      'is a tarball URL, which this engine does not fetch',
      'publish the feature to an OCI registry, or copy its folder under .devcontainer/ and write "./<folder>"',
    );
  }
  if (userId.startsWith('./') || userId.startsWith('../') || path.isAbsolute(userId))
    return { ref: localRef(userId, where), implied: {} };
  if (!userId.includes('/')) return shortId(userId);
  return { ref: ociRef(userId), implied: {} };
}

/** OCI: lower-cased as the reference CLI does; the registry needs a dot or localhost; only sha256 digests. */
export function ociRef(userId: string): FeatureRef & { kind: 'oci' } {
  const text = userId.toLowerCase().replace(/^ghcr\.io\/devcontainers-contrib\//, 'ghcr.io/devcontainers-extra/');
  const registry = text.split('/', 1)[0] ?? '';
  if (
    !registry.includes('.') &&
    !registry.startsWith('localhost') &&
    /^[\w-]+\/[\w.-]+\/[\w.-]+(@[\w.-]+)?$/.test(userId)
  ) {
    throw refError(
      userId,
      'is the deprecated GitHub-release form (owner/repo/feature@version), which this engine does not fetch',
      "write the feature's OCI reference instead, e.g. ghcr.io/<owner>/<repo>/<feature>:1 where its publisher has one",
    );
  }
  if (!registry.includes('.') && !registry.startsWith('localhost')) {
    throw refError(
      userId,
      `does not start with a registry host (${shown(registry)} has no dot)`,
      'write the full reference, e.g. ghcr.io/devcontainers/features/node:1',
    );
  }
  if (text.includes('@') && !/@sha256:[a-f0-9]{64}$/.test(text))
    throw refError(userId, 'has a digest that is not sha256:<64 hex>', 'pin it as REF@sha256:<digest>, or use a tag');
  let ref: ImageReference;
  try {
    ref = parseReference(text);
  } catch (err) {
    throw refError(
      userId,
      `is not an OCI reference: ${(err as Error).message}`,
      'write it as registry/namespace/id[:tag]',
    );
  }
  return { kind: 'oci', userId, ref, resource: `${ref.registry}/${ref.repository}` };
}

function shortId(userId: string): { ref: FeatureRef; implied: Record<string, boolean> } {
  const renamed = RENAMED[userId];
  const id = renamed?.id ?? (SHORT_IDS.has(userId) ? userId : undefined);
  if (!id) {
    throw refError(
      userId,
      'is a short feature id this engine does not know (a legacy v1 feature)',
      'write a full reference such as ghcr.io/devcontainers/features/<id>:1, or "./<folder>" for a local feature',
    );
  }
  const ref = ociRef(`ghcr.io/devcontainers/features/${id}:1`);
  return { ref: { ...ref, userId }, implied: renamed?.options ?? {} };
}

/**
 * A local feature's folder: relative to devcontainer.json's folder, and inside the opened
 * folder's .devcontainer/ (the spec's rule; the host also never sends a VM files from outside
 * the opened folder). Links are resolved before the check, so one cannot point elsewhere.
 */
function localRef(userId: string, where: RefContext): FeatureRef {
  if (path.isAbsolute(userId))
    throw refError(userId, 'is an absolute path', 'write a path relative to devcontainer.json, such as "./features/x"');
  const allowed = path.join(where.folder, '.devcontainer');
  let dir: string;
  try {
    dir = fs.realpathSync(path.resolve(where.configDir, userId));
  } catch {
    throw refError(
      userId,
      `does not exist (looked for ${path.resolve(where.configDir, userId)})`,
      'create the folder with a devcontainer-feature.json and an install.sh, or fix the path',
    );
  }
  const relative = path.relative(allowed, dir);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw refError(
      userId,
      `resolves to ${dir}, outside ${allowed}`,
      "local features must live under the workspace's .devcontainer/ folder: move it there",
    );
  }
  if (!fs.statSync(dir).isDirectory())
    throw refError(userId, `is not a folder (${dir})`, "point it at the feature's folder");
  return { kind: 'local', userId, dir };
}

/** The key soft dependencies (installsAfter, overrideFeatureInstallOrder) compare: the resource without its version. */
export function softKey(ref: FeatureRef): string {
  return ref.kind === 'oci' ? ref.resource : ref.dir;
}

function refError(userId: string, problem: string, fix: string): MicrovmError {
  return new MicrovmError('E_FEATURE_REF', `feature ${shown(userId)} ${problem}; ${fix}`);
}
