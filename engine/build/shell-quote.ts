/** `text` as one word of a POSIX shell command line: single-quoted, its own quotes escaped. */
export function singleQuoted(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
