import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The hooks directories host git would run for this folder, relative to it: `core.hooksPath`
 * from the repository's own config and from the user's and the system's git config, when it
 * points inside the folder (husky, lefthook and simple-git-hooks point it at `.husky`,
 * `.githooks`, ...). The filter keeps them read-only, so the guest cannot plant a hook that
 * the next host `git commit` runs. Only the files git itself reads are parsed, with no
 * `include` followed: this decides what to protect, and never runs git on the folder.
 */
export function hooksPathsOf(folder: string, home = os.homedir()): string[] {
  const configs = [
    ...repositoryConfigs(folder),
    path.join(home, '.gitconfig'),
    path.join(process.env.XDG_CONFIG_HOME || path.join(home, '.config'), 'git', 'config'),
    '/etc/gitconfig',
  ];
  const found = new Set<string>();
  for (const file of configs) {
    const value = coreHooksPath(readSmall(file));
    const relative = value === undefined ? undefined : insideFolder(folder, value, home);
    if (relative) found.add(relative);
  }
  return [...found];
}

/** `.git/config`, or the config of the git dir a `.git` file points to. */
function repositoryConfigs(folder: string): string[] {
  const dotGit = path.join(folder, '.git');
  const stat = fs.lstatSync(dotGit, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return [path.join(dotGit, 'config')];
  if (!stat?.isFile()) return [];
  const [, gitDir] = /^gitdir:\s*(.+?)\s*$/m.exec(readSmall(dotGit) ?? '') ?? [];
  return gitDir ? [path.join(path.resolve(folder, gitDir), 'config')] : [];
}

function readSmall(file: string): string | undefined {
  try {
    const stat = fs.statSync(file);
    return stat.isFile() && stat.size <= 1024 * 1024 ? fs.readFileSync(file, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

/** The last `hooksPath` in a `[core]` section (git's own rule: the last one wins). */
export function coreHooksPath(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  let section = '';
  let value: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    const [, header] = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"[^"]*")?\s*\]/.exec(line) ?? [];
    if (header) {
      section = header.toLowerCase();
      continue;
    }
    const [, hooksPath] = /^hookspath\s*=\s*(.*)$/i.exec(line) ?? [];
    if (section === 'core' && hooksPath !== undefined) value = unquote(hooksPath);
  }
  return value;
}

function unquote(value: string): string {
  const withoutComment = value.replace(/\s+[#;].*$/, '').trim();
  return withoutComment.startsWith('"') && withoutComment.endsWith('"') ? withoutComment.slice(1, -1) : withoutComment;
}

/** A hooks path relative to the folder, or undefined when it lies elsewhere. */
function insideFolder(folder: string, hooksPath: string, home: string): string | undefined {
  const expanded = hooksPath.startsWith('~/') ? path.join(home, hooksPath.slice(2)) : hooksPath;
  const absolute = path.resolve(folder, expanded);
  const relative = path.relative(folder, absolute);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return relative.split(path.sep).join('/');
}
