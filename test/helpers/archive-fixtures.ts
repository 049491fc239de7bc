import { tarOf, type Entry, type TestImage } from './image-fixtures';

/** An OCI archive (the OCI image layout as one tar), as `skopeo copy ... oci-archive:` writes. */
export function ociArchiveOf(image: TestImage): Buffer {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size }],
  };
  const blobs = [image.manifest, image.config, ...image.layers];
  return tarOf([
    { path: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { path: 'index.json', data: JSON.stringify(index) },
    { path: 'blobs/', type: 'dir' },
    { path: 'blobs/sha256/', type: 'dir' },
    ...blobs.map((b): Entry => ({ path: `blobs/sha256/${b.digest.slice(7)}`, data: b.data })),
  ]);
}

/**
 * A classic `docker save` tarball: manifest.json, the config as HEX.json, each layer as an
 * uncompressed ID/layer.tar. `duplicateAsSymlink` adds a layer that is a symlink to another,
 * as docker writes for repeated layers.
 */
export function dockerSaveOf(
  configJson: Buffer,
  layerTars: Buffer[],
  configHex: string,
  duplicateAsSymlink = false,
): Buffer {
  const entries: Entry[] = [];
  const names: string[] = [];
  layerTars.forEach((tar, i) => {
    const id = `${String(i).padStart(2, '0')}${'f'.repeat(62)}`;
    entries.push(
      { path: `${id}/`, type: 'dir' },
      { path: `${id}/VERSION`, data: '1.0' },
      { path: `${id}/layer.tar`, data: tar },
    );
    names.push(`${id}/layer.tar`);
  });
  if (duplicateAsSymlink) {
    const id = `99${'e'.repeat(62)}`;
    entries.push(
      { path: `${id}/`, type: 'dir' },
      { path: `${id}/layer.tar`, type: 'symlink', linkpath: `../${names[0]}` },
    );
    names.push(`${id}/layer.tar`);
  }
  entries.push({ path: `${configHex}.json`, data: configJson });
  entries.push({
    path: 'manifest.json',
    data: JSON.stringify([{ Config: `${configHex}.json`, RepoTags: ['test/app:1'], Layers: names }]),
  });
  entries.push({ path: 'repositories', data: '{}' });
  return tarOf(entries);
}
