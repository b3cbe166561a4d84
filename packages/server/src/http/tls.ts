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
export function secureServerOptions(credentials: TlsCredentials, handshakeTimeoutMs: number, mutual?: MutualTlsOptions) {
  return {
    http2: true as const,
    https: {
      ...CONTEXT_DEFAULTS, allowHTTP1: true, cert: credentials.cert, key: credentials.key,
      handshakeTimeout: handshakeTimeoutMs,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
      ...(mutual && mutualTlsOptions(mutual)),
    },
  };
}

/** The mTLS listener (RFC 8705): what it asks of clients. */
export interface MutualTlsOptions {
  /** PEM CAs named in the certificate request (M2M_AUTH_MTLS_CA), so a client picks a certificate they issued. */
  clientCa?: Buffer | undefined;
}

/**
 * A certificate is requested, never required, and not judged by the handshake: a client without
 * one may still authenticate otherwise, a self-signed one is §2.2's credential, and the core
 * checks a tls_client_auth certificate against the CAs itself (and so answers invalid_client,
 * not a failed handshake). The handshake still proves the client holds the certificate's key.
 */
function mutualTlsOptions(mutual: MutualTlsOptions) {
  return { requestCert: true, rejectUnauthorized: false, ...(mutual.clientCa && { ca: mutual.clientCa }) };
}

/** PEM blocks of a CA bundle. */
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * M2M_AUTH_MTLS_CA: the CA certificates (PEM, one or more, roots or intermediates) that issue the
 * certificates of tls_client_auth clients. Throws a ConfigError naming the file at fault.
 */
export function loadClientCas(path: string): { pem: Buffer; cas: X509Certificate[] } {
  const pem = readPem(path, 'M2M_AUTH_MTLS_CA', 'client CA bundle');
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError('TLS_INVALID', `M2M_AUTH_MTLS_CA=${path} holds no PEM certificate`);
  const cas = blocks.map((block, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw new ConfigError('TLS_INVALID', `M2M_AUTH_MTLS_CA=${path}: certificate ${i + 1} cannot be read: ${opensslReason(err)}`);
    }
    if (!cert.ca) throw new ConfigError('TLS_INVALID', `M2M_AUTH_MTLS_CA=${path}: certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
    return cert;
  });
  return { pem, cas };
}

/**
 * Reads the files again and swaps them into the listening server. New handshakes get the new
 * certificate; established connections are not touched. Throws (and changes nothing) when the
 * new files are unusable.
 */
export function reloadTls(server: ReloadableTlsServer, files: TlsFiles, mutual?: MutualTlsOptions): TlsCredentials {
  const credentials = loadTlsCredentials(files);
  server.setSecureContext({ ...CONTEXT_DEFAULTS, cert: credentials.cert, key: credentials.key, ...(mutual?.clientCa && { ca: mutual.clientCa }) });
  return credentials;
}

/** Swaps credentials already loaded (by reloadTls on another listener) into a second listening server. */
export function swapTls(server: ReloadableTlsServer, credentials: TlsCredentials, mutual?: MutualTlsOptions): void {
  server.setSecureContext({ ...CONTEXT_DEFAULTS, cert: credentials.cert, key: credentials.key, ...(mutual?.clientCa && { ca: mutual.clientCa }) });
}
