import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { Vm } from '../vm/vm';

/**
 * The certificate authorities this host trusts beyond the public ones, for the guest: a
 * TLS-inspecting proxy (common in companies, and on this project's own machines) signs every
 * connection with its own CA, and a guest without it fails TLS; npm then retries for half an
 * hour in silence. Docker Desktop gives its VM the host's CAs the same way.
 *
 * `auto`: the CAs the host's administrator added to its system store (Debian/Ubuntu's
 * /usr/local/share/ca-certificates, Fedora/RHEL's anchors, Arch's trust-source) and the file
 * of NODE_EXTRA_CA_CERTS; `off`: none; or a list of PEM files. Only CERTIFICATE blocks that
 * parse as X.509 CA certificates are taken, so a list naming the wrong file (a private key)
 * sends nothing of it. Certificates are public: no secret leaves the host.
 */
export type TrustSetting = 'auto' | 'off' | readonly string[];

export interface HostCertificates {
  /** PEM, one block per certificate, deduplicated. */
  pem: string;
  /** Subjects, for the log. */
  subjects: string[];
  /** Files or blocks left out, and why: for the log. */
  skipped: string[];
  /** Public roots (Node's own store, which every guest distribution ships too) found and left out. */
  publicRoots: number;
}

const AUTO_DIRS = [
  '/usr/local/share/ca-certificates',
  '/etc/pki/ca-trust/source/anchors',
  '/etc/ca-certificates/trust-source/anchors',
];
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_CERTIFICATES = 64;
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Where `auto` looks; tests point it elsewhere. */
export interface CertificateSources {
  env?: NodeJS.ProcessEnv;
  dirs?: readonly string[];
  now?: Date;
}

export function hostCertificates(setting: TrustSetting, sources: CertificateSources = {}): HostCertificates {
  const { env = process.env, dirs = AUTO_DIRS, now = new Date() } = sources;
  const out: HostCertificates = { pem: '', subjects: [], skipped: [], publicRoots: 0 };
  if (setting === 'off') return out;
  const files = setting === 'auto' ? autoFiles(env, dirs) : [...setting];
  const seen = new Set<string>();
  for (const file of files) {
    const text = readCapped(file, out.skipped);
    if (text === undefined) continue;
    const blocks = text.match(PEM_BLOCK) ?? [];
    if (blocks.length === 0) out.skipped.push(`${file}: no PEM certificate in it`);
    for (const block of blocks) {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(block);
      } catch {
        out.skipped.push(`${file}: a block that is not an X.509 certificate`);
        continue;
      }
      if (!cert.ca) {
        out.skipped.push(`${file}: ${cert.subject.replace(/\n/g, ', ')} is not a CA certificate`);
        continue;
      }
      if (seen.has(cert.fingerprint256)) continue;
      // NODE_EXTRA_CA_CERTS often names the whole system bundle: only what was added to it counts.
      if (publicRootFingerprints().has(cert.fingerprint256)) {
        seen.add(cert.fingerprint256);
        out.publicRoots++;
        continue;
      }
      if (new Date(cert.validTo) < now) {
        seen.add(cert.fingerprint256);
        out.skipped.push(`${file}: ${cert.subject.replace(/\n/g, ', ')} expired on ${cert.validTo}`);
        continue;
      }
      if (out.subjects.length >= MAX_CERTIFICATES) {
        out.skipped.push(`${file}: more than ${MAX_CERTIFICATES} certificates; the rest are left out`);
        break;
      }
      seen.add(cert.fingerprint256);
      out.pem += cert.toString().trim() + '\n';
      out.subjects.push(cert.subject.replace(/\n/g, ', '));
    }
  }
  return out;
}

/** Where distributions keep the roots their ca-certificates package ships (not the administrator's additions). */
const PACKAGED_ROOT_DIRS = ['/usr/share/ca-certificates', '/usr/share/pki/ca-trust-source'];
let publicRoots: Set<string> | undefined;

/**
 * Node's own roots and the distribution's packaged ones: a guest has its own copy of these (or
 * deliberately dropped one that was distrusted), so a bundle naming them adds nothing to send.
 */
function publicRootFingerprints(): Set<string> {
  if (publicRoots) return publicRoots;
  const pems = [...tls.rootCertificates];
  for (const file of certificateFiles(PACKAGED_ROOT_DIRS, 3, false)) {
    try {
      pems.push(...(fs.readFileSync(file, 'utf8').match(PEM_BLOCK) ?? []));
    } catch {
      // unreadable: not counted
    }
  }
  publicRoots = new Set(
    pems.flatMap((pem) => {
      try {
        return [new X509Certificate(pem).fingerprint256];
      } catch {
        return [];
      }
    }),
  );
  return publicRoots;
}

function autoFiles(env: NodeJS.ProcessEnv, dirs: readonly string[]): string[] {
  const files = certificateFiles(dirs, 2, true);
  if (env.NODE_EXTRA_CA_CERTS) files.push(env.NODE_EXTRA_CA_CERTS);
  return files;
}

/** The `.crt` and `.pem` files under `dirs`, `maxDepth` levels down, by name; links too when `links`. Missing directories are skipped. */
function certificateFiles(dirs: readonly string[], maxDepth: number, links: boolean): string[] {
  const files: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, e.name);
      if (e.isDirectory() && depth < maxDepth) walk(full, depth + 1);
      else if ((e.isFile() || (links && e.isSymbolicLink())) && /\.(crt|pem)$/i.test(e.name)) files.push(full);
    }
  };
  for (const dir of dirs) walk(dir, 0);
  return files;
}

function readCapped(file: string, skipped: string[]): string | undefined {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) {
      skipped.push(`${file}: not a file`);
      return undefined;
    }
    if (stat.size > MAX_FILE_BYTES) {
      skipped.push(`${file}: ${stat.size} bytes, more than ${MAX_FILE_BYTES}`);
      return undefined;
    }
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    skipped.push(`${file}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Where the guest gets them: the host's CAs alone (Node adds them to its own store), and the guest's store plus them. */
export const GUEST_HOST_CAS = '/usr/local/share/ca-certificates/microvm-host-cas.crt';
export const GUEST_CA_BUNDLE = '/etc/ssl/certs/microvm-ca-bundle.pem';
/** The guest image's own bundle, by distribution; the first that exists is extended. */
const GUEST_SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/cert.pem',
];
/** A guest's bundle is guest-written: it is only copied back into the guest, and only this much of it. */
const MAX_GUEST_BUNDLE = 4 * 1024 * 1024;

/**
 * Writes the host's CAs into the guest's store and returns the environment that points every
 * common toolchain at them: Node (NODE_EXTRA_CA_CERTS adds), OpenSSL, Python requests, pip,
 * git and curl (their variables replace the default store, so they get the full bundle).
 * The image's `update-ca-certificates` runs when it has one, so tools that read the system
 * store directly (apt, wget) trust them too.
 */
export async function installHostCertificates(
  vm: Vm,
  certs: HostCertificates,
  log: (line: string) => void,
): Promise<Record<string, string>> {
  // The container keeps them across opens: write and update the store only when they changed.
  const current = await vm.readFile(GUEST_HOST_CAS).catch(() => undefined);
  const bundled = await vm.readFile(GUEST_CA_BUNDLE).catch(() => undefined);
  if (current?.toString('utf8') !== certs.pem || !bundled) await writeToGuest(vm, certs, log);
  return {
    NODE_EXTRA_CA_CERTS: GUEST_HOST_CAS,
    SSL_CERT_FILE: GUEST_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: GUEST_CA_BUNDLE,
    PIP_CERT: GUEST_CA_BUNDLE,
    GIT_SSL_CAINFO: GUEST_CA_BUNDLE,
    CURL_CA_BUNDLE: GUEST_CA_BUNDLE,
  };
}

async function writeToGuest(vm: Vm, certs: HostCertificates, log: (line: string) => void): Promise<void> {
  await vm.writeFile(GUEST_HOST_CAS, certs.pem, { mode: 0o644 });
  let system = '';
  for (const file of GUEST_SYSTEM_BUNDLES) {
    const data = await vm.readFile(file).catch(() => undefined);
    if (!data) continue;
    if (data.length > MAX_GUEST_BUNDLE) {
      log(`the image's certificate bundle ${file} is ${data.length} bytes; the host's CAs are installed without it`);
      break;
    }
    system = data.toString('utf8');
    break;
  }
  await vm.writeFile(GUEST_CA_BUNDLE, `${system}${system && !system.endsWith('\n') ? '\n' : ''}${certs.pem}`, {
    mode: 0o644,
  });
  const update = await vm
    .exec({
      argv: [
        '/bin/sh',
        '-c',
        'command -v update-ca-certificates >/dev/null || exit 0; update-ca-certificates >/dev/null 2>&1 || exit 3',
      ],
      timeoutMs: 60_000,
    })
    .catch((err: Error) => ({ exitCode: -1, stderr: Buffer.from(err.message) }));
  if (update.exitCode !== 0)
    log(
      `update-ca-certificates failed in the VM (exit ${update.exitCode}); tools that read only the system store may not trust the host's CAs`,
    );
}

/** Phrases of a TLS failure over an issuer the guest does not trust, as npm, node, curl, git, pip, python and openssl print them. */
const UNTRUSTED_ISSUER =
  /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to get local issuer certificate|self[- ]signed certificate in certificate chain|CERTIFICATE_VERIFY_FAILED|server certificate verification failed|certificate signed by unknown authority|x509: certificate is not trusted/i;

/** A log line when guest output shows an untrusted issuer, with the fix for this setting; undefined otherwise. */
export function tlsFailureHint(text: string, setting: TrustSetting, installed: number): string | undefined {
  const match = UNTRUSTED_ISSUER.exec(text);
  if (!match) return undefined;
  const said = `a TLS connection in the VM failed because it does not trust the server's certificate issuer (${match[0]})`;
  if (setting === 'off')
    return `${said}; if this machine uses a TLS-inspecting proxy or a private CA, set microvm.trustHostCertificates to "auto" (it is "off") and reopen`;
  if (installed === 0)
    return `${said}; no host CA was found to install: add the CA's PEM file to microvm.trustHostCertificates and reopen`;
  return `${said}; the ${installed} host CA(s) installed do not include it: add the issuer's PEM file to microvm.trustHostCertificates and reopen`;
}
