// TLS on the public listener (RFC 8446, via node:tls): a certificate and key read from PEM files,
// HTTP/2 beside HTTP/1.1 chosen by ALPN (RFC 7301; RFC 9113 §3.2), and a reload in place on SIGHUP
// that new handshakes see while open connections keep the certificate they started with.

import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '../ground/errors.js';

export interface TlsFiles {
  certPath: string;
  keyPath: string;
}

export interface TlsCredentials {
  /** PEM: the server certificate, then any intermediates. */
  cert: Buffer;
  key: Buffer;
  /** What a log line may say about the certificate (nothing about the key). */
  info: CertificateInfo;
}

export interface CertificateInfo {
  subject: string;
  serialNumber: string;
  fingerprint256: string;
  validTo: string;
}

/** The part of a TLS server this module needs (tls.Server and http2's secure server both have it). */
export interface ReloadableTlsServer {
  setSecureContext(options: SecureContextOptions): void;
}

/** Settings every secure context of the listener shares, at start and on every reload. */
const CONTEXT_DEFAULTS = { minVersion: 'TLSv1.2' } as const satisfies SecureContextOptions;

/** The files the configuration names, or undefined for plain HTTP (loadConfig requires both or neither). */
export function tlsFiles(config: { tlsCert: string | undefined; tlsKey: string | undefined }): TlsFiles | undefined {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  return { certPath: config.tlsCert, keyPath: config.tlsKey };
}

function readPem(path: string, variable: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file'
      : code === 'EACCES' ? 'permission denied'
      : code === 'EISDIR' ? 'it is a folder'
      : (err as Error).message;
    throw new ConfigError('TLS_FILE_UNREADABLE', `Cannot read the TLS ${what} ${variable}=${path}: ${reason}`);
  }
}

/** OpenSSL's reason without its "error:0480006C:PEM routines::" prefix. */
function opensslReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, '').trim() || message;
}

/**
 * Reads the certificate and key and checks that they are PEM and belong together; throws a
 * ConfigError whose message is one line naming the file at fault.
 */
export function loadTlsCredentials(files: TlsFiles): TlsCredentials {
  const cert = readPem(files.certPath, 'M2M_AUTH_TLS_CERT', 'certificate');
  const key = readPem(files.keyPath, 'M2M_AUTH_TLS_KEY', 'key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError('TLS_INVALID', `M2M_AUTH_TLS_CERT=${files.certPath} is not a PEM certificate: ${opensslReason(err)}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new ConfigError('TLS_INVALID', `M2M_AUTH_TLS_KEY=${files.keyPath} is not a PEM private key: ${opensslReason(err)}`);
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new ConfigError('TLS_INVALID', `M2M_AUTH_TLS_KEY=${files.keyPath} is not the key of the certificate M2M_AUTH_TLS_CERT=${files.certPath}`);
  }
  try {
    createSecureContext({ ...CONTEXT_DEFAULTS, cert, key });
  } catch (err) {
    throw new ConfigError('TLS_INVALID', `The TLS certificate ${files.certPath} and key ${files.keyPath} cannot be used: ${opensslReason(err)}`);
  }
  return {
    cert,
    key,
    info: { subject: x509.subject.replace(/\n/g, ', '), serialNumber: x509.serialNumber, fingerprint256: x509.fingerprint256, validTo: x509.validTo },
  };
}

/**
 * Concurrent streams a client may open on one HTTP/2 connection (Node's default is 2^32 - 1):
 * the smallest value RFC 9113 §6.5.2 recommends, far above what a token client needs.
 */
export const MAX_CONCURRENT_STREAMS = 100;

/**
 * Fastify options for a TLS listener that speaks HTTP/2 and HTTP/1.1 on one port. Without TLS the
 * listener stays plain HTTP/1.1: cleartext HTTP/2 (h2c) is not offered. A handshake not done
 * within `handshakeTimeoutMs` closes the connection.
 */
export function secureServerOptions(credentials: TlsCredentials, handshakeTimeoutMs: number) {
  return {
    http2: true as const,
    https: {
      ...CONTEXT_DEFAULTS, allowHTTP1: true, cert: credentials.cert, key: credentials.key,
      handshakeTimeout: handshakeTimeoutMs,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
    },
  };
}

/**
 * Reads the files again and swaps them into the listening server. New handshakes get the new
 * certificate; established connections are not touched. Throws (and changes nothing) when the
 * new files are unusable.
 */
export function reloadTls(server: ReloadableTlsServer, files: TlsFiles): TlsCredentials {
  const credentials = loadTlsCredentials(files);
  server.setSecureContext({ ...CONTEXT_DEFAULTS, cert: credentials.cert, key: credentials.key });
  return credentials;
}
