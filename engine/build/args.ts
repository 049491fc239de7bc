/**
 * Dockerfile variable expansion as the FROM line sees it: `$NAME`, `${NAME}`,
 * `${NAME:-default}` and `${NAME:+alternative}`, with `\$` for a literal dollar. Unset names
 * expand to nothing, as in Docker.
 */
export function expandVariables(text: string, values: ReadonlyMap<string, string>, escape = '\\'): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === escape && text[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    if (c !== '$') {
      out += c;
      continue;
    }
    if (text[i + 1] === '{') {
      const close = text.indexOf('}', i + 2);
      if (close === -1) {
        out += text.slice(i);
        break;
      }
      out += braced(text.slice(i + 2, close), values);
      i = close;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))?.[0];
    if (!name) {
      out += c;
      continue;
    }
    out += values.get(name) ?? '';
    i += name.length;
  }
  return out;
}

function braced(inner: string, values: ReadonlyMap<string, string>): string {
  const modifier = /^([A-Za-z_][A-Za-z0-9_]*):([-+])(.*)$/s.exec(inner);
  if (!modifier) return values.get(inner) ?? '';
  const [, name = '', kind, word = ''] = modifier;
  const value = values.get(name);
  if (kind === '-') return value ? value : expandVariables(word, values);
  return value ? expandVariables(word, values) : '';
}

/**
 * The platform arguments BuildKit and buildah define for FROM lines without an ARG line.
 * Builds here are linux/amd64 only (the guest kernel's architecture).
 */
export const PLATFORM_ARGS: ReadonlyMap<string, string> = new Map([
  ['TARGETPLATFORM', 'linux/amd64'],
  ['TARGETOS', 'linux'],
  ['TARGETARCH', 'amd64'],
  ['TARGETVARIANT', ''],
  ['BUILDPLATFORM', 'linux/amd64'],
  ['BUILDOS', 'linux'],
  ['BUILDARCH', 'amd64'],
  ['BUILDVARIANT', ''],
]);
