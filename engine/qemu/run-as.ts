import * as fs from 'node:fs';

/** The unprivileged user QEMU drops to when the engine runs as root; `npm run setup` creates it. */
export const QEMU_USER = 'microvm';

export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
}

/** /etc/passwd is small; a larger file is not parsed (the engine then keeps QEMU as it is). */
const MAX_PASSWD_BYTES = 4 * 1024 * 1024;

/**
 * The user QEMU runs as after start-up (`-runas`), or undefined when it stays the engine's
 * own user: an engine that is not root has nothing to drop, and a root engine on a host
 * without the `microvm` user keeps QEMU as root (engineInfo says so).
 */
export function decideQemuUser(euid: number, passwd: string | undefined): QemuUser | undefined {
  if (euid !== 0 || passwd === undefined) return undefined;
  const entry = findPasswdEntry(passwd, QEMU_USER);
  return entry && entry.uid !== 0 ? entry : undefined;
}

/** One `name:x:uid:gid:...` line of passwd(5); malformed lines are skipped. */
export function findPasswdEntry(passwd: string, name: string): QemuUser | undefined {
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 7 || fields[0] !== name) continue;
    const [uid, gid] = [Number(fields[2]), Number(fields[3])];
    if (
      Number.isSafeInteger(uid) &&
      Number.isSafeInteger(gid) &&
      uid >= 0 &&
      gid >= 0 &&
      fields[2] !== '' &&
      fields[3] !== ''
    ) {
      return { name, uid, gid };
    }
  }
  return undefined;
}

let cached: { value: QemuUser | undefined } | undefined;

/** decideQemuUser for this process, read once. */
export function qemuUser(): QemuUser | undefined {
  cached ??= { value: decideQemuUser(process.geteuid?.() ?? -1, readPasswd()) };
  return cached.value;
}

function readPasswd(): string | undefined {
  try {
    if (fs.statSync('/etc/passwd').size > MAX_PASSWD_BYTES) return undefined;
    return fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
}
