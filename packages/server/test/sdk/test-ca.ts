// A test CA made with the openssl command line, and client certificates it signs, for the
// certificate-bound token tests (RFC 8705). Everything lives in a temporary directory.

import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  cert: string;
  key: string;
  /** The DER's SHA-256, base64url: the cnf x5t#S256 of tokens bound to it. */
  x5t: string;
  der: Buffer;
}

export interface TestCa {
  ca: Pem;
  /** A server certificate for 127.0.0.1. */
  server: Pem;
  client(name: string): Pem;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function load(dir: string, name: string): Pem {
  const cert = readFileSync(join(dir, `${name}.crt`), 'utf8');
  const der = new X509Certificate(cert).raw;
  return { cert, key: readFileSync(join(dir, `${name}.key`), 'utf8'), der, x5t: createHash('sha256').update(der).digest('base64url') };
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-sdk-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=sdk test CA']);
  const issue = (name: string, subject: string, ext: string): Pem => {
    openssl(dir, ['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2',
      '-extfile', `${name}.ext`]);
    return load(dir, name);
  };
  const server = issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  return {
    ca: load(dir, 'ca'),
    server,
    client: (name) => issue(name, `/CN=${name}`, 'extendedKeyUsage=clientAuth'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

