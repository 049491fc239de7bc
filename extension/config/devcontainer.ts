import { parse, ParseError, printParseErrorCode } from 'jsonc-parser';
import { z } from 'zod';
import { DevcontainerConfig, devcontainerSchema, SUPPORTED_KEYS } from './schema';
import { valueAt } from '../../engine/options';

/** A devcontainer.json that could not be used: the message names the file, the JSON path and what was expected. */
export class DevcontainerError extends Error {
  constructor(readonly file: string, readonly jsonPath: string, message: string) {
    super(`${file}: ${jsonPath}: ${message}`);
    this.name = 'DevcontainerError';
  }
}

export interface ParsedDevcontainer {
  config: DevcontainerConfig;
  /** The JSON object as written (what a workspace pins and compares at the next open). */
  raw: Record<string, unknown>;
  /** Things the user should know: keys we ignore, and that initializeCommand never runs. */
  warnings: string[];
}

/**
 * Parses `.devcontainer/devcontainer.json` text (JSON with comments and trailing commas).
 * `file` is only used in messages.
 */
export function parseDevcontainer(file: string, text: string): ParsedDevcontainer {
  const errors: ParseError[] = [];
  const raw: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const first = errors[0];
    const { line, column } = lineColumn(text, first.offset);
    throw new DevcontainerError(file, `line ${line}, column ${column}`, `invalid JSON: ${printParseErrorCode(first.error)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DevcontainerError(file, '$', `expected an object, got ${describe(raw)}`);
  }
  const result = devcontainerSchema.safeParse(raw);
  if (!result.success) throw toError(file, raw, result.error.issues[0]);
  return { config: result.data, raw: raw as Record<string, unknown>, warnings: warningsFor(raw as Record<string, unknown>) };
}

function warningsFor(raw: Record<string, unknown>): string[] {
  const warnings: string[] = [];
  if ('initializeCommand' in raw) {
    warnings.push('initializeCommand is ignored: it would run on the host, and this extension never runs workspace commands on the host.');
  }
  const unsupported = Object.keys(raw).filter((key) => !SUPPORTED_KEYS.has(key) && key !== 'initializeCommand');
  if (unsupported.length > 0) warnings.push(`Unsupported keys are ignored: ${unsupported.join(', ')}.`);
  return warnings;
}

function toError(file: string, raw: unknown, issue: z.ZodIssue): DevcontainerError {
  const got = valueAt(raw, issue.path);
  return new DevcontainerError(file, jsonPath(issue.path), `${expectation(issue)}, got ${describe(got)}`);
}

function expectation(issue: z.ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_enum_value':
      return `expected one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
    case 'invalid_literal':
      return `expected ${JSON.stringify(issue.expected)}`;
    default:
      return issue.message.startsWith('expected') ? issue.message : `expected ${issue.message}`;
  }
}

/** `$.forwardPorts[1]`, `$.portsAttributes["3000"].label` */
export function jsonPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    return /^[A-Za-z_$][\w$]*$/.test(key) ? `${out}.${key}` : `${out}[${JSON.stringify(key)}]`;
  }, '$');
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}
