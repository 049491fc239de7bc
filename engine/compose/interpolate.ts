/**
 * Compose's `${...}` interpolation, as `docker compose` applies it to every string value of
 * a compose file before anything else reads it:
 *
 * - `$$` is a literal `$`;
 * - `$NAME` and `${NAME}` are the variable's value, empty when unset;
 * - `${NAME:-default}` / `${NAME-default}`: the default when unset or empty / when unset;
 * - `${NAME:+other}` / `${NAME+other}`: `other` when set and not empty / when set;
 * - `${NAME:?message}` / `${NAME?message}`: an error naming the variable when unset or empty / unset.
 *
 * Defaults may hold further `${...}`. A `$` followed by anything else stays as written.
 */
export interface InterpolationError {
  /** The variable whose `?` form failed, or the text that could not be read. */
  name: string;
  message: string;
}

export type Lookup = (name: string) => string | undefined;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** The text with its variables replaced; errors are collected, and the failing part becomes empty. */
export function interpolate(text: string, lookup: Lookup, errors: InterpolationError[] = []): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) return out + text.slice(i);
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '{') {
      const close = closingBrace(text, dollar + 2);
      if (close < 0) {
        errors.push({
          name: text.slice(dollar),
          message: `"${text.slice(dollar, dollar + 40)}" has no closing "}"; write $$ for a literal $`,
        });
        return out;
      }
      out += expand(text.slice(dollar + 2, close), lookup, errors);
      i = close + 1;
    } else {
      const name = NAME.exec(text.slice(dollar + 1))?.[0];
      if (name) {
        out += lookup(name) ?? '';
        i = dollar + 1 + name.length;
      } else {
        out += '$';
        i = dollar + 1;
      }
    }
  }
  return out;
}

/** The index of the `}` that closes a `${` whose inside starts at `start`, counting nested `${`. */
function closingBrace(text: string, start: number): number {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '$') i++;
    else if (text[i] === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function expand(inside: string, lookup: Lookup, errors: InterpolationError[]): string {
  const name = NAME.exec(inside)?.[0];
  if (!name) {
    errors.push({
      name: inside,
      message: `"\${${inside}}" is not a variable: a name is letters, digits and _, not starting with a digit`,
    });
    return '';
  }
  const rest = inside.slice(name.length);
  const value = lookup(name);
  if (rest === '') return value ?? '';
  const colon = rest.startsWith(':');
  const op = rest[colon ? 1 : 0];
  const arg = rest.slice(colon ? 2 : 1);
  const missing = value === undefined || (colon && value === '');
  switch (op) {
    case '-':
      return missing ? interpolate(arg, lookup, errors) : (value ?? '');
    case '+':
      return missing ? '' : interpolate(arg, lookup, errors);
    case '?':
      if (!missing) return value ?? '';
      errors.push({
        name,
        message: `${name} is required${arg ? `: ${interpolate(arg, lookup, errors)}` : ''} (set it in the .env file next to the compose file)`,
      });
      return '';
    default:
      errors.push({
        name,
        message: `"\${${inside}}" has an unknown modifier after ${name}; use :-, -, :+, +, :? or ?`,
      });
      return '';
  }
}
