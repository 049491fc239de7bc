import { MicrovmError } from '../errors';

/** The numeric user and group a guest process runs as. */
export interface UserIds {
  uid: number;
  gid: number;
}

/**
 * Resolves an image's `User` (`name`, `uid`, `name:group`, `uid:gid`; empty = root) to ids,
 * looking names up in the guest's own /etc/passwd and /etc/group as Docker does.
 * Returns undefined for root, so requests stay as they were.
 */
export async function resolveUser(
  spec: string,
  readGuestFile: (path: string) => Promise<string>,
  missing: MissingUser = imageUserMissing,
): Promise<UserIds | undefined> {
  if (spec === '' || spec === 'root' || spec === '0' || spec === '0:0') return undefined;
  const [userPart = '', groupPart] = spec.split(':', 2);
  const passwd =
    isNumeric(userPart) && (groupPart === undefined || isNumeric(groupPart))
      ? ''
      : await readGuestFile('/etc/passwd').catch(() => '');
  const [entryUid, entryGid] = findIds(passwd, userPart, 2) ?? [];
  const uid = isNumeric(userPart) ? Number(userPart) : entryUid;
  if (uid === undefined) throw missing(spec, `user ${JSON.stringify(userPart)} is not in the guest's /etc/passwd`);
  if (groupPart === undefined) return { uid, gid: entryGid ?? uid };
  if (isNumeric(groupPart)) return { uid, gid: Number(groupPart) };
  const [gid] = findIds(await readGuestFile('/etc/group').catch(() => ''), groupPart, 1) ?? [];
  if (gid === undefined) throw missing(spec, `group ${JSON.stringify(groupPart)} is not in the guest's /etc/group`);
  return { uid, gid };
}

/**
 * The ids of `name`'s line in a passwd (uid, gid) or group (gid) file: the `count` fields after
 * the password. A line whose ids are not all numbers is skipped, so a malformed gid never becomes NaN.
 */
function findIds(text: string, name: string, count: number): number[] | undefined {
  for (const line of text.split('\n')) {
    const [entryName, , ...rest] = line.split(':');
    const ids = rest.slice(0, count);
    if (entryName === name && ids.length === count && ids.every(isNumeric)) return ids.map(Number);
  }
  return undefined;
}

function isNumeric(value: string | undefined): value is string {
  return value !== undefined && /^\d{1,10}$/.test(value) && Number(value) <= 0xffffffff;
}

/** The error for a user spec the guest's files do not define; `why` names the missing entry. */
export type MissingUser = (spec: string, why: string) => Error;

function imageUserMissing(spec: string, why: string): MicrovmError {
  return new MicrovmError(
    'E_IMAGE_INVALID',
    `the image's User ${JSON.stringify(spec)} cannot be used: ${why}; fix the image's USER`,
  );
}

/** A guest user as processes run as it: ids, supplementary groups, home directory and login shell. */
export interface UserInfo extends UserIds {
  name: string;
  /** The groups /etc/group lists the user in, besides its own gid (a feature's nvm or sdkman group, say). */
  groups: number[];
  home: string;
  shell: string;
}

/**
 * A user spec (`name`, `uid`, `name:group`, `uid:gid`) with its home and shell from the guest's
 * /etc/passwd (root's defaults, /root and /bin/sh, when the entry says nothing).
 */
export async function userInfo(
  spec: string,
  readGuestFile: (path: string) => Promise<string>,
  missing?: MissingUser,
): Promise<UserInfo> {
  const ids = (await resolveUser(spec, readGuestFile, missing)) ?? { uid: 0, gid: 0 };
  const passwd = await readGuestFile('/etc/passwd').catch(() => '');
  const entry = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((f) => f.length >= 7 && Number(f[2]) === ids.uid);
  const name = entry?.[0] ?? (ids.uid === 0 ? 'root' : String(ids.uid));
  return {
    ...ids,
    name,
    groups: entry ? memberGroups(await readGuestFile('/etc/group').catch(() => ''), name, ids.gid) : [],
    home: entry?.[5] || (ids.uid === 0 ? '/root' : '/'),
    shell: loginShell(entry?.[6]),
  };
}

/** The gids of the /etc/group lines that list `name` as a member, its primary group left out, at most 64. */
function memberGroups(group: string, name: string, primary: number): number[] {
  const gids = new Set<number>();
  for (const line of group.split('\n')) {
    const [, , gid, members] = line.split(':');
    if (members === undefined || !isNumeric(gid)) continue;
    if (members.trim().split(',').includes(name) && Number(gid) !== primary) gids.add(Number(gid));
  }
  return [...gids].slice(0, 64);
}

/** The passwd entry's shell when it is one a person can use; /bin/sh for none, nologin or false. */
function loginShell(field: string | undefined): string {
  const shell = field?.trim() ?? '';
  return shell.startsWith('/') && !/\/(nologin|false)$/.test(shell) ? shell : '/bin/sh';
}
