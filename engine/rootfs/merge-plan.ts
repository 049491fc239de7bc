import { throwIfAborted } from '../abort';
import { MicrovmError } from '../errors';
import type { LayerBlob } from '../image/types';
import { normalizeEntryPath, OPAQUE_MARKER, WHITEOUT_PREFIX } from './entry-path';
import { layerTarStream } from './layer-stream';
import { readTar, TarFormatError, type TarLimits } from '../tar/reader';
import { fromBytePath, type TarHeader } from '../tar/types';

/** Where an entry came from: its layer and its position among that layer's entries. */
export interface SourceRef {
  layer: number;
  ordinal: number;
}

/** The entry that creates an inode: for a hardlink, the entry it links to. */
interface InodeSource {
  source: SourceRef;
  header: TarHeader;
}

interface StoredEntry {
  header: TarHeader;
  inode: InodeSource;
}

interface TreeNode {
  /** null for a directory no layer has an entry for (created implicitly, 0755 root:root). */
  entry: StoredEntry | null;
  /** Present exactly when the node is a directory. */
  children: Map<string, TreeNode> | null;
  layer: number;
}

/** Output order for mke2fs: directories first (parents before children), then the rest by source. */
export interface MergePlan {
  directories: Array<{ path: string; header: TarHeader | null }>;
  /** Per layer: the winning entries by ordinal, each with every final path sharing its inode. */
  winners: Array<Map<number, { header: TarHeader; paths: [string, ...string[]] }>>;
  contentBytes: number;
  inodeCount: number;
}

export interface PlanOptions {
  maxLayerBytes: number;
  tarLimits: TarLimits;
  onBytes?: (bytes: number) => void;
  /** Checked at every entry of both passes: an abort stops reading layers (E_ABORTED). */
  signal?: AbortSignal;
}

/**
 * First pass: reads every layer's headers (verifying each blob's digest as it goes) and
 * computes which entry wins each path after whiteouts, opaque directories and overrides.
 */
export async function planMerge(layers: LayerBlob[], options: PlanOptions): Promise<MergePlan> {
  const root: TreeNode = { entry: null, children: new Map(), layer: -1 };
  let scanned = 0;
  for (const [index, layer] of layers.entries()) {
    const entries: Array<{ parts: string[]; header: TarHeader; ordinal: number }> = [];
    const whiteouts: string[][] = [];
    const opaques: string[][] = [];
    for await (const { header, ordinal } of layerEntries(layer, options)) {
      scanned += 512 + (header.type === 'file' ? header.size : 0);
      options.onBytes?.(scanned);
      const parts = checkedPath(header.path, layer);
      const name = parts[parts.length - 1] ?? '';
      if (name === OPAQUE_MARKER) opaques.push(parts.slice(0, -1));
      else if (name.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX))
        continue; // Other aufs metadata.
      else if (name.startsWith(WHITEOUT_PREFIX)) {
        const target = name.slice(WHITEOUT_PREFIX.length);
        if (target === '' || target === '.' || target === '..')
          throw invalidEntry(layer, header.path, 'names no file to white out');
        whiteouts.push([...parts.slice(0, -1), target]);
      } else entries.push({ parts, header, ordinal });
    }
    // Whiteouts and opaque markers hide lower layers only, whatever their order in this layer.
    for (const dir of opaques) {
      const node = ensureDirectory(root, dir, index, layer);
      node.children = new Map();
    }
    for (const parts of whiteouts) {
      const name = parts.at(-1);
      if (name !== undefined) ensureDirectory(root, parts.slice(0, -1), index, layer).children?.delete(name);
    }
    for (const { parts, header, ordinal } of entries) addEntry(root, parts, header, { layer: index, ordinal }, layer);
  }
  return collectPlan(root, layers.length);
}

export interface LayerEntry {
  header: TarHeader;
  ordinal: number;
  body: () => AsyncGenerator<Buffer>;
}

/** One layer's entries, digest-verified at the end; tar format errors become MicrovmErrors. */
export async function* layerEntries(layer: LayerBlob, options: PlanOptions): AsyncGenerator<LayerEntry> {
  let ordinal = 0;
  try {
    for await (const entry of readTar(layerTarStream(layer, options.maxLayerBytes), options.tarLimits)) {
      throwIfAborted(options.signal, 'building the root disk');
      yield { header: entry.header, ordinal: ordinal++, body: entry.body };
    }
  } catch (err) {
    if (err instanceof TarFormatError) {
      throw new MicrovmError(
        'E_IMAGE_INVALID',
        `layer ${layer.digest} is not a valid tar archive: ${err.message}; the image is malformed or hostile; use another image`,
        { cause: err },
      );
    }
    throw err;
  }
}

function checkedPath(raw: string, layer: LayerBlob): string[] {
  const parts = normalizeEntryPath(raw);
  if (!parts) throw invalidEntry(layer, raw, 'has a ".." component and could escape the root');
  return parts;
}

function ensureDirectory(root: TreeNode, parts: string[], layerIndex: number, layer: LayerBlob): TreeNode {
  let node = root;
  for (const [i, part] of parts.entries()) {
    const children = node.children as Map<string, TreeNode>;
    let child = children.get(part);
    if (child && !child.children) {
      // A lower layer's file or symlink is replaced by a directory; one from this very layer
      // would mean writing through it (for example `a -> /` then `a/etc/x`), which we refuse.
      if (child.layer === layerIndex) {
        throw invalidEntry(
          layer,
          parts.join('/'),
          `lies below "${parts.slice(0, i + 1).join('/')}", which this layer made a non-directory`,
        );
      }
      child = undefined;
    }
    if (!child) {
      child = { entry: null, children: new Map(), layer: layerIndex };
      children.set(part, child);
    }
    node = child;
  }
  return node;
}

function addEntry(root: TreeNode, parts: string[], header: TarHeader, source: SourceRef, layer: LayerBlob): void {
  const name = parts.at(-1);
  if (name === undefined) {
    if (header.type !== 'dir')
      throw invalidEntry(layer, header.path, 'replaces the root directory with a non-directory');
    root.entry = { header, inode: { source, header } };
    return;
  }
  const parent = ensureDirectory(root, parts.slice(0, -1), source.layer, layer);
  const children = parent.children as Map<string, TreeNode>;
  const existing = children.get(name);
  if (header.type === 'dir') {
    const entry = { header, inode: { source, header } };
    if (existing?.children) Object.assign(existing, { entry, layer: source.layer });
    else children.set(name, { entry, children: new Map(), layer: source.layer });
    return;
  }
  let inode: InodeSource = { source, header };
  if (header.type === 'hardlink') {
    const targetParts = checkedPath(header.linkpath, layer);
    const target = lookup(root, targetParts);
    if (!target?.entry || target.children) {
      throw invalidEntry(
        layer,
        header.path,
        `is a hardlink to "${fromBytePath(header.linkpath)}", which is not an earlier non-directory entry`,
      );
    }
    inode = target.entry.inode;
  }
  children.set(name, { entry: { header, inode }, children: null, layer: source.layer });
}

function lookup(root: TreeNode, parts: string[]): TreeNode | undefined {
  let node: TreeNode | undefined = root;
  for (const part of parts) node = node?.children?.get(part);
  return node;
}

function collectPlan(root: TreeNode, layerCount: number): MergePlan {
  const plan: MergePlan = {
    directories: [],
    winners: Array.from({ length: layerCount }, () => new Map()),
    contentBytes: 0,
    inodeCount: 0,
  };
  const visit = (node: TreeNode, path: string): void => {
    if (node.children) {
      plan.directories.push({ path, header: node.entry?.header ?? null });
      plan.inodeCount++;
      for (const [name, child] of node.children) visit(child, path === '' ? name : `${path}/${name}`);
      return;
    }
    const { source, header } = (node.entry as StoredEntry).inode;
    const layerWinners = plan.winners[source.layer]!; // one map per layer, made above
    const existing = layerWinners.get(source.ordinal);
    if (existing) {
      existing.paths.push(path);
      return;
    }
    layerWinners.set(source.ordinal, { header, paths: [path] });
    plan.inodeCount++;
    if (header.type === 'file') plan.contentBytes += header.size;
  };
  visit(root, '');
  return plan;
}

function invalidEntry(layer: LayerBlob, rawPath: string, problem: string): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_INVALID',
    `layer ${layer.digest}: entry "${fromBytePath(rawPath)}" ${problem}; refusing the image; nothing was written outside the disk image`,
  );
}
