import { MicrovmError } from '../errors';
import type { LayerBlob } from '../image/types';
import { layerEntries, type MergePlan, type PlanOptions } from './merge-plan';
import { encodeHeader, endOfArchive, paddingFor } from '../tar/writer';
import { newHeader, type BytePath } from '../tar/types';

/**
 * Second pass: one tar stream in the order mke2fs needs. mke2fs looks up each entry's parent
 * and each hardlink's target when it meets the entry, so all directories come first (parents
 * before children) and every inode is written once, its other names as hardlinks right after.
 * `onXattrs` sees each inode's extended attributes with the path it is written under.
 */
export async function* mergedTar(
  layers: LayerBlob[],
  plan: MergePlan,
  options: PlanOptions,
  onXattrs?: (path: BytePath, xattrs: Map<string, Buffer>) => void,
): AsyncGenerator<Buffer> {
  for (const { path, header } of plan.directories) {
    if (header) onXattrs?.(path, header.xattrs);
    yield encodeHeader(header ? { ...header, path, type: 'dir' } : newHeader({ path, type: 'dir' }));
  }
  for (const [index, layer] of layers.entries()) {
    const winners = plan.winners[index];
    if (!winners || winners.size === 0) continue;
    for await (const { header, ordinal, body } of layerEntries(layer, options)) {
      const winner = winners.get(ordinal);
      if (!winner) continue;
      // The blob is re-read, so make sure it is still the archive the plan was made from.
      if (header.path !== winner.header.path || header.size !== winner.header.size) {
        throw new MicrovmError(
          'E_IMAGE_DIGEST',
          `layer ${layer.digest} changed between reads (entry ${ordinal}); re-export the image`,
        );
      }
      const [first, ...others] = winner.paths;
      onXattrs?.(first, winner.header.xattrs);
      yield encodeHeader({ ...winner.header, path: first });
      if (winner.header.type === 'file') {
        yield* body();
        yield Buffer.alloc(paddingFor(winner.header.size));
      }
      for (const path of others) yield encodeHeader(newHeader({ path, type: 'hardlink', linkpath: first }));
    }
  }
  yield endOfArchive();
}
