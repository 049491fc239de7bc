import { isMap, isSeq, LineCounter, parseDocument, Scalar, visit, YAMLMap } from 'yaml';
import { interpolate, InterpolationError, Lookup } from './interpolate';
import type { ComposeProblems } from './problems';

/** A value written `!reset`: the merge removes the key from what earlier files set. */
export const RESET = '\u0000compose:reset';
/** A map or list written `!override` is wrapped in this key: the merge replaces instead of merging. */
export const OVERRIDE = '\u0000compose:override';

/** YAML aliases a file may expand; a "billion laughs" file stops here instead of using the host's memory. */
const MAX_ALIASES = 1000;

/**
 * One compose file as data: YAML 1.2 with merge keys (`<<: *defaults`, which real files use
 * with `x-` fields), `!reset` and `!override` kept as markers for the merge, and every string
 * value interpolated (keys are not, as in docker compose). Problems name the line.
 */
export function readComposeYaml(
  text: string,
  file: string,
  lookup: Lookup,
  problems: ComposeProblems,
): Record<string, unknown> | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    merge: true,
    lineCounter,
    prettyErrors: true,
    uniqueKeys: true,
    strict: false,
    customTags: markerTags(),
  });
  for (const error of doc.errors) {
    const pos = error.linePos?.[0];
    problems.add(
      file,
      'error',
      'compose-syntax',
      pos ? `line ${pos.line}, column ${pos.col}` : '$',
      error.message.split('\n', 1)[0] ?? '',
      'the compose project cannot be read',
    );
  }
  if (doc.errors.length > 0) return undefined;
  visit(doc, {
    Scalar(key, node: Scalar) {
      if (key !== 'key' && typeof node.value === 'string') {
        const errors: InterpolationError[] = [];
        node.value = interpolate(node.value, lookup, errors);
        for (const e of errors)
          problems.add(
            file,
            'error',
            'compose-variable',
            where(node, lineCounter),
            e.message,
            'the value is left empty',
          );
      }
    },
  });
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    problems.add(file, 'error', 'compose-syntax', '$', (err as Error).message, 'the compose project cannot be read');
    return undefined;
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    problems.add(
      file,
      'error',
      'compose-syntax',
      '$',
      'the file is not a mapping of keys such as services:',
      'the compose project cannot be read',
    );
    return undefined;
  }
  return data as Record<string, unknown>;
}

function where(node: Scalar, lineCounter: LineCounter): string {
  const offset = node.range?.[0];
  if (offset === undefined) return '$';
  const pos = lineCounter.linePos(offset);
  return `line ${pos.line}, column ${pos.col}`;
}

/** `!reset` on any node becomes RESET; `!override` on a map or list wraps it in OVERRIDE. */
function markerTags() {
  return [
    { tag: '!reset', resolve: () => RESET },
    { tag: '!reset', collection: 'map' as const, nodeClass: YAMLMap, resolve: () => new Scalar(RESET) },
    { tag: '!reset', collection: 'seq' as const, resolve: () => new Scalar(RESET) },
    { tag: '!override', resolve: (value: string) => value },
    {
      tag: '!override',
      collection: 'map' as const,
      nodeClass: YAMLMap,
      resolve: (map: unknown) => wrapOverride(map),
    },
    { tag: '!override', collection: 'seq' as const, resolve: (seq: unknown) => wrapOverride(seq) },
  ];
}

function wrapOverride(node: unknown): unknown {
  if (!isMap(node) && !isSeq(node)) return node;
  const wrapper = new YAMLMap();
  wrapper.set(OVERRIDE, node);
  return wrapper;
}
