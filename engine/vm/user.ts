import { MicrovmError } from '../errors';

export interface UserIds {
  uid: number;
  gid: number;
}

/**
 * Resolves an image's `User` (`name`, `uid`, `name:group`, `uid:gid`; empty = root) to ids,
 * looking names up in the guest's own /etc/passwd and /etc/group as Docker does.
 * Returns undefined for root, so requests stay as they were.
 */
export async function resolveUser(spec: string, readGuestFile: (path: string) => Promise<string>): Promise<UserIds | undefined> {
  if (spec === '' || spec === 'root' || spec === '0' || spec === '0:0') return undefined;
  const [userPart, groupPart] = spec.split(':', 2);
  const passwd = isNumeric(userPart) && (groupPart === undefined || isNumeric(groupPart)) ? '' : await readGuestFile('/etc/passwd').catch(() => '');
  const entry = findEntry(passwd, userPart);
  const uid = isNumeric(userPart) ? Number(userPart) : entry ? Number(entry[2]) : undefined;
  if (uid === undefined) throw notFound(spec, `user ${JSON.stringify(userPart)} is not in the guest's /etc/passwd`);
  if (groupPart === undefined) return { uid, gid: entry ? Number(entry[3]) : uid };
  if (isNumeric(groupPart)) return { uid, gid: Number(groupPart) };
  const group = findEntry(await readGuestFile('/etc/group').catch(() => ''), groupPart);
  if (!group) throw notFound(spec, `group ${JSON.stringify(groupPart)} is not in the guest's /etc/group`);
  return { uid, gid: Number(group[2]) };
}

function findEntry(text: string, name: string): string[] | undefined {
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3 && isNumeric(fields[2])) return fields;
  }
  return undefined;
}

function isNumeric(value: string | undefined): value is string {
  return value !== undefined && /^\d{1,10}$/.test(value) && Number(value) <= 0xffffffff;
}

function notFound(spec: string, why: string): MicrovmError {
  return new MicrovmError('E_IMAGE_INVALID', `the image's User ${JSON.stringify(spec)} cannot be used: ${why}; fix the image's USER`);
}
