import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * One message style for every MicrovmError the code raises: lower case (a name such as QEMU,
 * MICROVM_HOME or a quoted value may start it), no trailing period, one sentence whose parts
 * are joined by ";" or ":", so that messages read the same when the CLI prints
 * `microvm: error [CODE]: message` and when they are joined into longer ones.
 *
 * Checked on the source, for every `new MicrovmError(code, message)` whose message the scan can
 * read: string literals joined by `+`, or a `?:` choosing between such; a `const` of the same
 * file holding one; or a parameter of the helper `function` declaration around the raise, read
 * at each call of that helper in the same file (its code too, when the parameter's type is a
 * union of code literals). An interpolated `${name}` whose `const name` is such literals
 * is expanded, each alternative checked; other interpolations may hold anything. Any other
 * message (an error restated, a message handed through from elsewhere) must be listed in
 * PASSED_THROUGH with the reason.
 *
 * A next step ("; run ...", "; set ...", "see ..."): required of every message whose code is in
 * NEXT_STEP_CODES (the codes where the caller always has something to do), not of the others:
 * the test does not judge whether a message of another code could name one.
 */
const REPO = path.resolve(__dirname, '../..');
const ROOTS = ['engine', 'extension'].map((d) => path.join(REPO, d));
const IDENT = /^[A-Za-z_$][\w$]*$/;

/** Messages the scan cannot read, by file and message expression, with why that is right. */
const PASSED_THROUGH: Record<string, string> = {
  'engine/errors.ts message': 'restated() and the error constructors take a message their callers wrote',
  'engine/supervisor/wire-error.ts message': "the supervisor's error rebuilt in a client, its message as sent",
};

/** Codes whose every message names what to do next. */
const NEXT_STEP_CODES = new Set([
  'E_ACCEL_UNAVAILABLE',
  'E_AGENT_UNRESPONSIVE',
  'E_AGENT_VERSION',
  'E_BUILD_CONTEXT',
  'E_CONFIG_PATH',
  'E_FEATURE_NOT_FOUND',
  'E_FEATURE_ORDER',
  'E_FILE_NOT_FOUND',
  'E_FILE_TOO_LARGE',
  'E_FORWARD_LIMIT',
  'E_HOST_DISK_FULL',
  'E_LISTENER_TIMEOUT',
  'E_OUTPUT_LIMIT',
  'E_PLATFORM_MISSING',
  'E_POOL_SHUTDOWN',
  'E_PORT_IN_USE',
  'E_REGISTRY_UNREACHABLE',
  'E_SETUP_MISSING',
  'E_STATE_DIR',
  'E_TYPE_PROJECTION_LIMIT',
  'E_WORKSPACE_RECORD',
  'E_WORKSPACE_CONFIG',
  'E_WORKSPACE_RUNNING',
]);
/** A clause that tells the reader what to do: an imperative after ";", ":", "," or "or", or "see ...". */
const NEXT_STEP =
  /(?:^|[;:,(]\s*|\bor\s+|\bthen\s+)(?:run|set|use|fix|see|check|list|make|build|release|close|pass|give|add|remove|install|free|restart|try|wait|open|delete|connect|choose|rename|start|stop|reopen|upgrade|enable|allow|raise|lower|increase|reduce|move|point|keep|update|edit|write|retry|acquire|call|correct|unset|create|mount|turn|put|drop|split|quote|approve|reinstall|rebuild|clear|shorten|log in|sign in)\b/i;

interface Raise {
  where: string;
  /** The codes it may carry (literals, or a helper parameter typed as a union of them); empty when unknown. */
  codes: string[];
  /** The message's literal pieces (joined by `+`), one list per alternative and expansion. */
  variants: string[][];
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

const QUOTES = new Set(['`', "'", '"']);

/** Just past the string literal that starts at `i`; a template's `${...}` is read through, literals inside it too. */
function literalEnd(text: string, i: number): number {
  const quote = text[i];
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') j++;
    else if (c === quote) return j + 1;
    else if (quote === '`' && c === '$' && text[j + 1] === '{') j = closingBracket(text, j + 2);
  }
  return text.length;
}

/** The index of the bracket that closes the expression starting at `i` (literals skipped). */
function closingBracket(text: string, i: number): number {
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j]!;
    if (QUOTES.has(c)) j = literalEnd(text, j) - 1;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      if (depth === 0) return j;
      depth--;
    }
  }
  return text.length;
}

/** The top-level pieces from `start` up to the bracket that closes them (or a `;` at depth 0), split at `sep`. */
function splitTop(text: string, start = 0, seps = ','): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let piece = start;
  for (let i = start; i < text.length; i++) {
    const c = text[i]!;
    if (QUOTES.has(c)) i = literalEnd(text, i) - 1;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c) || (c === ';' && depth === 0)) {
      if (depth === 0) break;
      depth--;
    } else if (depth === 0 && seps.includes(c)) {
      pieces.push(text.slice(piece, i).trim());
      piece = i + 1;
    }
  }
  const end = closingOrSemicolon(text, start);
  pieces.push(text.slice(piece, end).trim());
  return pieces;
}

function closingOrSemicolon(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text[i]!;
    if (QUOTES.has(c)) i = literalEnd(text, i) - 1;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c) || (c === ';' && depth === 0)) {
      if (depth === 0) return i;
      depth--;
    }
  }
  return text.length;
}

/** The indexes of `expr`'s top-level characters among `chars` (literals and brackets skipped; `?.` and `??` are not `?`). */
function topLevel(expr: string, chars: string): number[] {
  const found: number[] = [];
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (QUOTES.has(c)) i = literalEnd(expr, i) - 1;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0 && chars.includes(c)) {
      if (c === '?' && (expr[i + 1] === '.' || expr[i + 1] === '?' || expr[i - 1] === '?')) continue;
      found.push(i);
    }
  }
  return found;
}

/**
 * What `expr` may be, one list of literal pieces per alternative: literals joined by `+`, a
 * parenthesized term among them, or `cond ? a : b` of such (nested too); undefined for anything else.
 */
function alternatives(expr: string): string[][] | undefined {
  expr = expr.trim();
  const question = topLevel(expr, '?')[0];
  if (question !== undefined) {
    // The `:` that pairs with this `?`: nested ones before it are paired first.
    let open = 0;
    for (const i of topLevel(expr, '?:')) {
      if (i <= question) continue;
      if (expr[i] === '?') open++;
      else if (open > 0) open--;
      else {
        const yes = alternatives(expr.slice(question + 1, i));
        const no = alternatives(expr.slice(i + 1));
        return yes && no ? [...yes, ...no] : undefined;
      }
    }
    return undefined;
  }
  let variants: string[][] = [[]];
  const plus = topLevel(expr, '+');
  const terms = [-1, ...plus].map((at, k) => expr.slice(at + 1, plus[k] ?? expr.length).trim());
  for (const term of terms) {
    let options: string[][] | undefined;
    if (QUOTES.has(term[0] ?? '') && literalEnd(term, 0) === term.length) options = [[term.slice(1, -1)]];
    else if (term.startsWith('(') && closingBracket(term, 1) === term.length - 1)
      options = alternatives(term.slice(1, -1));
    if (!options) return undefined;
    variants = variants.flatMap((v) => options.map((o) => [...v, ...o]));
  }
  return variants;
}

/**
 * The initializer of the `const name` a use at `index` sees: the last one before it inside the
 * function around it, else one at the top level of the file; undefined when there is none.
 */
function constInitializer(text: string, name: string, index: number): string | undefined {
  const declaration = String.raw`\bconst ${name.replace(/\$/g, '\\$')}(?:\s*:\s*[\w<>[\]| ]+)?\s*=\s*`;
  const fn = enclosingFunction(text, index);
  let found: RegExpExecArray | undefined;
  for (const m of text.slice(fn?.start ?? index, index).matchAll(new RegExp(declaration, 'g'))) found = m;
  if (found) return splitTop(text, (fn?.start ?? index) + found.index + found[0].length)[0];
  const top = new RegExp(`^${declaration.slice(2)}`, 'm').exec(text);
  return top ? splitTop(text, top.index + top[0].length)[0] : undefined;
}

/** Each interpolated `${name}` whose constant the file holds replaced by each of its values. */
function expand(text: string, index: number, parts: string[]): string[][] {
  for (const [at, piece] of parts.entries()) {
    for (const m of piece.matchAll(/\$\{([A-Za-z_$][\w$]*)\}/g)) {
      const init = constInitializer(text, m[1]!, index);
      const values = init === undefined ? undefined : alternatives(init);
      if (!values) continue;
      const before = piece.slice(0, m.index);
      const after = piece.slice(m.index + m[0].length);
      return values.flatMap((v) =>
        expand(text, index, [...parts.slice(0, at), before + v.join('') + after, ...parts.slice(at + 1)]),
      );
    }
  }
  return [parts];
}

/** The function declared around `index`: its name and its parameters (name and type text). */
function enclosingFunction(
  text: string,
  index: number,
): { name: string; start: number; params: Array<[string, string]> } | undefined {
  let found: RegExpExecArray | undefined;
  for (const m of text.slice(0, index).matchAll(/\bfunction\s+([\w$]+)\s*(?:<[^>]*>)?\(/g)) found = m;
  if (!found) return undefined;
  const params = splitTop(text, found.index + found[0].length).map((p): [string, string] => {
    const colon = p.indexOf(':');
    return colon < 0 ? [p.trim(), ''] : [p.slice(0, colon).replace(/\?$/, '').trim(), p.slice(colon + 1).trim()];
  });
  return { name: found[1]!, start: found.index, params };
}

function codesOf(text: string, index: number, expr: string): string[] {
  if (/^[^'"`]*(?:\?\s*)?'E_[A-Z_]+'(?:\s*:\s*'E_[A-Z_]+')?$/.test(expr))
    return [...expr.matchAll(/'(E_[A-Z_]+)'/g)].map((m) => m[1]!);
  const param = enclosingFunction(text, index)?.params.find(([name]) => name === expr);
  return param ? [...param[1].matchAll(/'(E_[A-Z_]+)'/g)].map((m) => m[1]!) : [];
}

function raises(file: string, passedThrough: Set<string>): { found: Raise[]; unread: string[] } {
  const text = fs.readFileSync(file, 'utf8');
  const rel = path.relative(REPO, file);
  const line = (index: number) => `${rel}:${text.slice(0, index).split('\n').length}`;
  const found: Raise[] = [];
  const unread: string[] = [];
  const helpersRead = new Set<string>();
  for (const call of text.matchAll(/new MicrovmError\(/g)) {
    const [codeExpr = '', messageExpr = ''] = splitTop(text, call.index + call[0].length);
    const codes = codesOf(text, call.index, codeExpr.replace(/\s+as\s+\w+$/, ''));
    const add = (where: string, at: number, variants: string[][]) =>
      found.push({ where, codes, variants: variants.flatMap((parts) => expand(text, at, parts)) });
    const inline = alternatives(messageExpr);
    if (inline) {
      add(line(call.index), call.index, inline);
      continue;
    }
    if (!IDENT.test(messageExpr)) {
      unread.push(`${line(call.index)}: ${messageExpr.slice(0, 40)}`);
      continue;
    }
    const helper = enclosingFunction(text, call.index);
    const position = helper?.params.findIndex(([name]) => name === messageExpr) ?? -1;
    const init = constInitializer(text, messageExpr, call.index);
    const initVariants = init === undefined ? undefined : alternatives(init);
    if (initVariants) add(`${line(call.index)} (const ${messageExpr})`, call.index, initVariants);
    else if (helper && position >= 0) {
      if (helpersRead.has(helper.name)) continue;
      helpersRead.add(helper.name);
      for (const site of text.matchAll(new RegExp(String.raw`(?<!function\s+)\b${helper.name}\(`, 'g'))) {
        const arg = splitTop(text, site.index + site[0].length)[position] ?? '';
        const argVariants = alternatives(arg);
        if (argVariants) add(`${line(site.index)} (${helper.name}(...))`, site.index, argVariants);
        else unread.push(`${line(site.index)}: ${helper.name}(...) with ${arg.slice(0, 40)}`);
      }
    } else if (!passedThrough.has(`${rel} ${messageExpr}`)) unread.push(`${line(call.index)}: ${messageExpr}`);
  }
  return { found, unread };
}

function scan(): { found: Raise[]; unread: string[] } {
  const passedThrough = new Set(Object.keys(PASSED_THROUGH));
  const all = ROOTS.flatMap(sources).map((file) => raises(file, passedThrough));
  return { found: all.flatMap((r) => r.found), unread: all.flatMap((r) => r.unread) };
}

/** A template's `${...}` replaced by X: what it holds may be anything. */
function withoutInterpolations(piece: string): string {
  let out = '';
  for (let i = 0; i < piece.length; i++) {
    if (piece[i] === '\\') {
      out += piece.slice(i, i + 2);
      i++;
    } else if (piece[i] === '$' && piece[i + 1] === '{') {
      out += 'X';
      i = closingBracket(piece, i + 2);
    } else out += piece[i];
  }
  return out;
}

function styleProblems(parts: string[]): string[] {
  const message = parts.join('');
  const problems: string[] = [];
  if (/^[A-Z][a-z]/.test(message)) problems.push(`starts with a capital: ${message.slice(0, 60)}`);
  if (/\.\s*$/.test(message)) problems.push(`ends with a period: ...${message.slice(-40)}`);
  if (/\. [A-Z][a-z]/.test(parts.map(withoutInterpolations).join('')))
    problems.push(`a second sentence (join it with ";"): ${message.slice(0, 60)}`);
  for (const [i, part] of parts.slice(1).entries()) {
    if (/^[A-Z][a-z]/.test(part) && !/[\s;:(]$/.test(parts[i] ?? ''))
      problems.push(`"${(parts[i] ?? '').slice(-20)}" + "${part.slice(0, 20)}" joined without a separator`);
  }
  return problems;
}

test('every MicrovmError message the scan reads starts in lower case, has no trailing period, is one sentence', () => {
  const { found } = scan();
  assert.ok(found.length > 250, `the scan found only ${found.length} messages: the pattern no longer matches the code`);
  const viaHelpers = found.filter((r) => r.where.includes('('));
  assert.ok(viaHelpers.length >= 5, `only ${viaHelpers.length} messages read through a constant or a helper`);
  const offenders = [
    ...new Set(found.flatMap((r) => r.variants.flatMap((v) => styleProblems(v).map((p) => `${r.where}: ${p}`)))),
  ];
  assert.deepEqual(offenders, []);
});

test('a message the scan cannot read is one PASSED_THROUGH lists with its reason', () => {
  assert.deepEqual(scan().unread, []);
  for (const [site, reason] of Object.entries(PASSED_THROUGH)) assert.ok(reason.length > 20, `${site} says why`);
});

test('every message of a NEXT_STEP_CODES code names the next step', () => {
  const { found } = scan();
  const held = found.filter((r) => r.codes.some((c) => NEXT_STEP_CODES.has(c)));
  assert.ok(held.length >= 40, `only ${held.length} messages of NEXT_STEP_CODES found`);
  const without = held.flatMap((r) =>
    r.variants
      .map((v) => v.join(''))
      .filter((m) => !NEXT_STEP.test(m))
      .map((m) => `${r.where} [${r.codes.join('|')}]: ${m.slice(0, 90)}`),
  );
  assert.deepEqual(without, []);
});

test('the style checks catch what they claim to', () => {
  assert.deepEqual(styleProblems(['the disk is full; free space and try again']), []);
  assert.equal(styleProblems(['The disk is full']).length, 1);
  assert.equal(styleProblems(['the disk is full.']).length, 1);
  assert.equal(styleProblems(['the disk is full. Free space']).length, 1);
  assert.equal(styleProblems(['the disk is full', 'Free space']).length, 1);
  assert.deepEqual(styleProblems(['${a ? `x. Y` : ""} is full']), []);
  assert.deepEqual(alternatives("c ? 'a' + `b` : d ? 'e' : \"f\""), [['a', 'b'], ['e'], ['f']]);
  assert.ok(NEXT_STEP.test('cannot read x: permission denied; make it readable'));
  assert.ok(!NEXT_STEP.test('the guest agent refused the call: EIO'));
});
