/**
 * What is wrong with, or not honoured in, a devcontainer.json: every problem at once, each
 * naming the JSON path and the value, saying why and what the user gets instead.
 *
 * - error: the folder cannot be opened as the file describes (invalid JSON, a wrong type for
 *   a key the open depends on);
 * - warning: something is skipped or changed, with its consequence (a bind mount of a host
 *   path, a host variable not allowed into the VM);
 * - info: keys for editors and other tools (customizations, extensions): the log only.
 */
export type Severity = 'error' | 'warning' | 'info';

/** A problem of a configuration: its severity, a stable code, where it is and what to do. */
export interface Problem {
  severity: Severity;
  /** A stable identifier of the kind of problem: `invalid-type`, `bind-outside-folder`, ... */
  code: string;
  /** `$.mounts[2]`, `$.build.dockerfile`, or `line 3, column 7` for a syntax error. */
  path: string;
  /** What is wrong, with the value quoted: plain text. */
  message: string;
  /** What happens instead, or what the user loses. */
  consequence?: string;
  /** The file the problem is in, when it is not the devcontainer.json (a compose file, an env file). */
  file?: string;
}

/** Collects problems while a configuration is read. */
export class Problems {
  readonly list: Problem[] = [];

  add(severity: Severity, code: string, path: string, message: string, consequence?: string): void {
    this.list.push(
      consequence === undefined ? { severity, code, path, message } : { severity, code, path, message, consequence },
    );
  }

  get hasErrors(): boolean {
    return this.list.some((p) => p.severity === 'error');
  }
}

/** `$.forwardPorts[1]`, `$.portsAttributes["3000"].label` */
export function jsonPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    return /^[A-Za-z_$][\w$]*$/.test(key) ? `${out}.${key}` : `${out}[${JSON.stringify(key)}]`;
  }, '$');
}

/** A value quoted for a message: JSON, cut at 80 characters. */
export function quote(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One line per problem: `file: $.path: message (consequence)`. */
export function formatProblem(file: string, problem: Problem): string {
  return `${problem.file ?? file}: ${problem.path}: ${problem.message}${problem.consequence ? `; ${problem.consequence}` : ''}`;
}
