// The certificate checks of mutual-TLS client authentication (RFC 8705 §2) at unit level, with
// certificates made by openssl and a frozen clock: the CA chain and validity (expired, not yet
// valid, another CA, a CA that is not one), each §2.1.2 name, and the self-signed key match.

import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientRecord } from '../../src/ground/records.js';
import { canonicalIp, certificateNames, parseDistinguishedName, subjectAltNames, tlsClientAuthValueProblem } from '../../src/clients/tls-client-auth.js';
import { CertificateRefused, certificateKeyRegistered, checkClientCertificate, checkIssuedByTrustedCa } from '../../src/oauth/client-auth/mutual-tls.js';
import { opensslMissing } from '../tls/test-ca.js';
import { createClientCa, type ClientCa } from './client-certs.js';

const missing = opensslMissing();
const DAY = 24 * 3600 * 1000;

describe.skipIf(missing !== undefined)('mutual-TLS certificate checks', () => {
  let ca: ClientCa;
  let other: ClientCa;
  let caCert: X509Certificate;
  let leaf: X509Certificate;
  let foreign: X509Certificate;
  let selfSigned: X509Certificate;

  beforeAll(() => {
    ca = createClientCa();
    other = createClientCa('other');
    caCert = new X509Certificate(ca.ca);
    leaf = new X509Certificate(ca.issue('leaf', '/C=DE/O=Acme\\, GmbH/OU=Ops+UID=7/CN=worker one', 'DNS:worker.example.com,URI:spiffe://acme.example/w,IP:10.1.2.3,IP:2001:db8::1,email:Ops@Acme.example').cert);
    foreign = new X509Certificate(other.issue('foreign', '/CN=worker one', 'DNS:worker.example.com').cert);
    selfSigned = new X509Certificate(ca.selfSigned('self', '/CN=self').cert);
  });
  afterAll(() => {
    ca?.cleanup();
    other?.cleanup();
  });

  it('accepts a certificate of a trusted CA while both are valid, and says why otherwise', () => {
    const now = Date.now();
    expect(() => checkIssuedByTrustedCa(leaf, [caCert], now)).not.toThrow();
    const reason = (cas: X509Certificate[], at: number) => {
      try {
        checkIssuedByTrustedCa(leaf, cas, at);
        return 'accepted';
      } catch (err) {
        expect(err).toBeInstanceOf(CertificateRefused);
        return (err as Error).message;
      }
    };
    expect(reason([caCert], now + 3 * DAY)).toBe('client certificate is expired or not yet valid');
    expect(reason([caCert], now - DAY)).toBe('client certificate is expired or not yet valid');
    expect(reason([new X509Certificate(other.ca)], now)).toBe('client certificate is not issued by a CA of M2M_AUTH_MTLS_CA');
    expect(reason([], now)).toContain('M2M_AUTH_MTLS_CA is not set');
    // A leaf is no CA, even its own issuer's name matching would not make it one.
    expect(reason([leaf], now)).toBe('client certificate is not issued by a CA of M2M_AUTH_MTLS_CA');
    expect(() => checkIssuedByTrustedCa(foreign, [caCert], now)).toThrow(CertificateRefused);
    expect(() => checkIssuedByTrustedCa(selfSigned, [caCert], now)).toThrow(CertificateRefused);
  });

  it('matches each RFC 8705 §2.1.2 name as registered', () => {
    // Node spells an IPv6 address in full; matching canonicalises both sides.
    expect(subjectAltNames(leaf)).toStrictEqual([
      ['DNS', 'worker.example.com'], ['URI', 'spiffe://acme.example/w'], ['IP Address', '10.1.2.3'],
      ['IP Address', '2001:DB8:0:0:0:0:0:1'], ['email', 'Ops@Acme.example'],
    ]);
    const yes: Array<[Parameters<typeof certificateNames>[1], string]> = [
      ['tls_client_auth_subject_dn', 'CN=worker one,OU=Ops+UID=7,O=Acme\\, GmbH,C=DE'],
      ['tls_client_auth_subject_dn', 'cn=Worker  One, ou=ops + uid=7, o=acme\\, gmbh, c=de'],
      ['tls_client_auth_san_dns', 'WORKER.example.com'],
      ['tls_client_auth_san_uri', 'spiffe://acme.example/w'],
      ['tls_client_auth_san_ip', '10.1.2.3'],
      ['tls_client_auth_san_ip', '2001:0db8:0000::0001'],
      ['tls_client_auth_san_email', 'Ops@acme.EXAMPLE'],
    ];
    for (const [field, value] of yes) expect(certificateNames(leaf, field, value), `${field} ${value}`).toBe(true);
    const no: Array<[Parameters<typeof certificateNames>[1], string]> = [
      ['tls_client_auth_subject_dn', 'CN=worker one,O=Acme\\, GmbH,C=DE'],
      ['tls_client_auth_subject_dn', 'CN=worker one'],
      ['tls_client_auth_san_dns', 'example.com'],
      ['tls_client_auth_san_dns', 'spiffe://acme.example/w'],
      ['tls_client_auth_san_uri', 'spiffe://acme.example/W'],
      ['tls_client_auth_san_ip', '10.1.2.4'],
      ['tls_client_auth_san_email', 'ops@acme.example'],
    ];
    for (const [field, value] of no) expect(certificateNames(leaf, field, value), `${field} ${value}`).toBe(false);
    expect(certificateNames(selfSigned, 'tls_client_auth_san_dns', 'self')).toBe(false);
  });

  it('checks registered names', () => {
    expect(parseDistinguishedName('CN=a,O=b')).toStrictEqual([[['O', 'b']], [['CN', 'a']]]);
    expect(parseDistinguishedName('CN=a+UID=1,O=b')).toStrictEqual([[['O', 'b']], [['CN', 'a'], ['UID', '1']]]);
    expect(tlsClientAuthValueProblem('tls_client_auth_subject_dn', 'CN=a,O=b\\,c')).toBeUndefined();
    expect(tlsClientAuthValueProblem('tls_client_auth_subject_dn', 'CN=a,,O=b')).toBeDefined();
    expect(tlsClientAuthValueProblem('tls_client_auth_san_ip', '::1')).toBeUndefined();
    expect(tlsClientAuthValueProblem('tls_client_auth_san_ip', '1.2.3')).toBeDefined();
    expect(tlsClientAuthValueProblem('tls_client_auth_san_dns', 'a.example.com\n')).toBeDefined();
    expect(tlsClientAuthValueProblem('tls_client_auth_san_uri', 'x'.repeat(1001))).toBeDefined();
  });

  it('matches a self-signed certificate by its public key only', () => {
    const jwk = selfSigned.publicKey.export({ format: 'jwk' }) as Record<string, string>;
    expect(certificateKeyRegistered(selfSigned, [{ ...jwk, kty: jwk.kty!, kid: 'k' }])).toBe(true);
    expect(certificateKeyRegistered(leaf, [{ ...jwk, kty: jwk.kty! }])).toBe(false);
    const client = { tokenEndpointAuthMethod: 'self_signed_tls_client_auth', jwks: { keys: [{ ...jwk, kty: jwk.kty! }] }, tlsClientAuth: null } as unknown as ClientRecord;
    // No CA, no validity period: §2.2's certificate only carries the key.
    expect(() => checkClientCertificate(client, selfSigned, [], Date.now() + 30 * DAY)).not.toThrow();
    expect(() => checkClientCertificate(client, leaf, [caCert], Date.now())).toThrow('public key is not in the client\'s jwks');
  });
});
