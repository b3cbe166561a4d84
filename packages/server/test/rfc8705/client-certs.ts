// Client certificates for the mutual-TLS tests, made with the openssl command line at test time:
// a client CA (its own, apart from the server's), certificates it issues with the subject and
// subjectAltNames a test chooses, and self-signed ones.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.error?.message ?? r.stderr}`);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export interface ClientCertificate {
  /** PEM */
  cert: string;
  key: string;
  /** DER, as Client-Cert carries it. */
  der: Buffer;
}

export interface ClientCa {
  dir: string;
  caPath: string;
  /** The CA certificate (PEM). */
  ca: string;
  /** A certificate this CA issues, with `subject` (openssl's /C=../CN=.. form) and optional subjectAltName (openssl's form). */
  issue(name: string, subject: string, san?: string): ClientCertificate;
  /** A self-signed certificate (no CA). */
  selfSigned(name: string, subject: string, san?: string): ClientCertificate;
  cleanup(): void;
}

function readCert(dir: string, name: string): ClientCertificate {
  const cert = readFileSync(join(dir, `${name}.crt`), 'utf8');
  const b64 = cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  return { cert, key: readFileSync(join(dir, `${name}.key`), 'utf8'), der: Buffer.from(b64, 'base64') };
}

export function createClientCa(cn = 'm2m-auth test client CA'): ClientCa {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-mtls-'));
  openssl([
    'req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], dir);
  const caPath = join(dir, 'ca.crt');
  let serial = 0x100;
  return {
    dir,
    caPath,
    ca: readFileSync(caPath, 'utf8'),
    issue(name, subject, san) {
      writeFileSync(join(dir, `${name}.ext`), [
        'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
        ...(san === undefined ? [] : [`subjectAltName=${san}`]),
      ].join('\n') + '\n');
      openssl(['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
      openssl([
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(serial++),
        '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
      ], dir);
      return readCert(dir, name);
    },
    selfSigned(name, subject, san) {
      openssl([
        'req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
        ...(san === undefined ? [] : ['-addext', `subjectAltName=${san}`]),
      ], dir);
      return readCert(dir, name);
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
