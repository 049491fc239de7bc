declare const noticeBrand: unique symbol;

/**
 * Text fit for a VS Code notification: our own fixed words with every value escaped. Only
 * the `notice` template makes one, and extension/ui/notify.ts shows nothing else.
 */
export type NoticeText = string & { readonly [noticeBrand]: true };

/** How much of one interpolated value a notification shows; the detail belongs in the log. */
export const MAX_NOTICE_VALUE_CHARS = 80;
export const MAX_NOTICE_CHARS = 400;

/** Control, zero-width, line/paragraph separator and bidi override characters: they forge lines or reorder text. */
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

/** Characters that start a link, markup or an icon, and the look-alikes shown instead. */
const LOOKALIKES: Record<string, string> = {
  '[': '\uff3b',
  ']': '\uff3d',
  '<': '\u2039',
  '>': '\u203a',
  '`': "'",
  $: '\uff04',
};

/**
 * A notification message: the literal parts as written, each value through noticeValue().
 * Usage: notice`MicroVM: cannot forward guest port ${port} [${code}]; see the MicroVM log.`
 */
export function notice(strings: TemplateStringsArray, ...values: unknown[]): NoticeText {
  const text = strings.reduce((out, literal, i) => out + (i > 0 ? noticeValue(values[i - 1]) : '') + literal, '');
  return cut(text, MAX_NOTICE_CHARS) as NoticeText;
}

/**
 * One value as inert text. VS Code turns `[label](command:...)` in a notification into a
 * link that runs the command when clicked, so brackets, angle brackets, backticks and `$`
 * become look-alikes and every `scheme:` loses its colon; control characters (newlines,
 * bidi overrides) become spaces; long values are cut.
 */
export function noticeValue(value: unknown): string {
  return plainLine(String(value), MAX_NOTICE_VALUE_CHARS)
    .replace(/[[\]<>`$]/g, (c) => LOOKALIKES[c] ?? ' ')
    .replace(/([A-Za-z][A-Za-z0-9+.-]*):/g, '$1\u2236');
}

/** Guest or config text as one plain line (no control or bidi characters), at most `max` characters. */
export function plainLine(text: string, max: number): string {
  return cut(text.replace(INVISIBLE, ' ').replace(/\s+/g, ' ').trim(), max);
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}\u2026`;
}
