// A throwaway certificate authority made with the openssl command line at test time: a CA key
// and certificate, and server certificates for 127.0.0.1 and localhost (subjectAltName) with
// serial numbers the tests choose, so a test can tell which certificate a handshake presented.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Why TLS tests cannot run here, or undefined when the openssl command works. */
export function opensslMissing(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'the openssl command is not available';
  return undefined;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.error?.message ?? r.stderr}`);
}

export interface ServerCertificate {
  certPath: string;
  keyPath: string;
  /** Upper-case hex, as X509Certificate.serialNumber and TLSSocket.getPeerCertificate() report it. */
  serial: string;
}

export interface TestCa {
  dir: string;
  caPath: string;
  /** The CA certificate (PEM) to give clients as their only trust anchor. */
  ca: string;
  /** A new server certificate for 127.0.0.1/localhost signed by this CA, written under `name`. */
  issue(name: string, serial: string): ServerCertificate;
  cleanup(): void;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-tls-'));
  openssl([
    'req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=m2m-auth test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], dir);
  writeFileSync(join(dir, 'server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ].join('\n') + '\n');
  const caPath = join(dir, 'ca.crt');
  return {
    dir,
    caPath,
    ca: readFileSync(caPath, 'utf8'),
    issue(name, serial) {
      openssl(['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost'], dir);
      openssl([
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${serial}`,
        '-days', '2', '-extfile', 'server.ext', '-out', `${name}.crt`,
      ], dir);
      return { certPath: join(dir, `${name}.crt`), keyPath: join(dir, `${name}.key`), serial: serial.toUpperCase() };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
