import * as fs from 'node:fs';

/** Whether `path` is a regular file this process may execute (virtiofsd, bindfs, fusermount). */
export function isExecutable(path: string): boolean {
  try {
    fs.accessSync(path, fs.constants.X_OK);
    return fs.statSync(path).isFile();
  } catch {
    return false;
  }
}
