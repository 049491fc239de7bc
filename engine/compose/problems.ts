import type { Problem, Severity } from '../devcontainer/problems';

/** Problems of compose files: each names its own file (relative to the workspace folder). */
export class ComposeProblems {
  readonly list: Problem[] = [];

  add(file: string, severity: Severity, code: string, path: string, message: string, consequence?: string): void {
    this.list.push({ severity, code, path, message, file, ...(consequence === undefined ? {} : { consequence }) });
  }

  get hasErrors(): boolean {
    return this.list.some((p) => p.severity === 'error');
  }
}

/** `services.db.ports[0]`: the YAML path the way compose users write it. */
export function yamlPath(path: ReadonlyArray<string | number>): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    const part = /^[A-Za-z_][\w.-]*$/.test(key) ? key : JSON.stringify(key);
    return out ? `${out}.${part}` : part;
  }, '');
}
