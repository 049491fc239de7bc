import type { Blob, TestImage } from './image-fixtures';

/** A minimal push client (OCI distribution API, monolithic uploads) for seeding test registries. */
export async function pushImage(
  base: string,
  repository: string,
  tag: string,
  image: TestImage,
  authorization?: string,
): Promise<void> {
  for (const blob of [image.config, ...image.layers]) await pushBlob(base, repository, blob, authorization);
  await putManifest(base, repository, tag, image.manifest, authorization);
}

export async function putManifest(
  base: string,
  repository: string,
  ref: string,
  manifest: Blob,
  authorization?: string,
): Promise<void> {
  const res = await fetch(`${base}/v2/${repository}/manifests/${ref}`, {
    method: 'PUT',
    headers: { ...auth(authorization), 'Content-Type': manifest.mediaType },
    body: manifest.data,
  });
  if (res.status !== 201) throw new Error(`manifest push ${repository}:${ref}: HTTP ${res.status} ${await res.text()}`);
}

export async function pushBlob(base: string, repository: string, blob: Blob, authorization?: string): Promise<void> {
  const headers = auth(authorization);
  const head = await fetch(`${base}/v2/${repository}/blobs/${blob.digest}`, { method: 'HEAD', headers });
  if (head.status === 200) return;
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location') as string, base);
  location.searchParams.set('digest', blob.digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body: blob.data,
  });
  if (put.status !== 201) throw new Error(`blob upload ${blob.digest}: HTTP ${put.status} ${await put.text()}`);
}

function auth(authorization: string | undefined): Record<string, string> {
  return authorization ? { Authorization: authorization } : {};
}
