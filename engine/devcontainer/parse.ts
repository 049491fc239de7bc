import { parse, ParseError, printParseErrorCode } from 'jsonc-parser';
import { Problems, quote } from './problems';

/**
 * devcontainer.json text (JSON with comments and trailing commas) to its object. Every
 * syntax error is a problem with its line and column; the object is undefined when the text
 * is not JSON at all or not an object.
 */
export function parseConfigText(text: string, problems: Problems): Record<string, unknown> | undefined {
  const errors: ParseError[] = [];
  const raw: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  for (const error of errors) {
    const { line, column } = lineColumn(text, error.offset);
    problems.add(
      'error',
      'invalid-json',
      `line ${line}, column ${column}`,
      `invalid JSON: ${printParseErrorCode(error.error)}`,
      'fix the file; nothing in it is used',
    );
  }
  if (errors.length > 0) return undefined;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.add(
      'error',
      'not-an-object',
      '$',
      `expected an object, got ${quote(raw)}`,
      'fix the file; nothing in it is used',
    );
    return undefined;
  }
  return raw as Record<string, unknown>;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1) ?? '').length + 1 };
}
