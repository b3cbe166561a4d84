// Mutual-TLS client authentication (RFC 8705 §2): tls_client_auth, a certificate issued by a CA
// the server trusts for client certificates whose subject or one subjectAltName is the value the
// client registered (§2.1), and self_signed_tls_client_auth, a certificate whose public key is one
// of the client's registered jwks (§2.2). The TLS handshake (or the trusted proxy's) proved that
// the caller holds the certificate's private key; this module only reads the certificate.

import { createHash, type X509Certificate } from 'node:crypto';
import type { ClientRecord, PublicJwk } from '../../ground/records.js';
import { certificateNames, subjectAltNames } from '../../clients/tls-client-auth.js';

/** Why a certificate does not authenticate a client: said in the log only, never to the caller. */
export class CertificateRefused extends Error {}

/** RFC 8705 §3.1: the `x5t#S256` confirmation of a certificate, base64url SHA-256 of its DER. */
export function certificateThumbprint(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('base64url');
}

function validAt(cert: X509Certificate, now: number): boolean {
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return Number.isFinite(from) && Number.isFinite(to) && from <= now && now <= to;
}

/**
 * RFC 8705 §2.1: the certificate must chain to a trusted CA. The issuing CA itself (a root or an
 * intermediate) is one of `cas`: its name is the certificate's issuer, its key signed the
 * certificate, it is a CA, and both are valid now. Throws CertificateRefused with the reason.
 */
export function checkIssuedByTrustedCa(cert: X509Certificate, cas: readonly X509Certificate[], now: number): void {
  if (cas.length === 0) throw new CertificateRefused('no CA is trusted for client certificates (M2M_AUTH_MTLS_CA is not set)');
  if (!validAt(cert, now)) throw new CertificateRefused('client certificate is expired or not yet valid');
  const issuer = cas.find((ca) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (issuer === undefined) throw new CertificateRefused('client certificate is not issued by a CA of M2M_AUTH_MTLS_CA');
  if (!validAt(issuer, now)) throw new CertificateRefused('the CA of the client certificate is expired or not yet valid');
}

/** The members that make a public key what it is (RFC 7638 §3.2), for comparing a certificate's key with a JWK. */
function keyMembers(jwk: Record<string, unknown>): string | undefined {
  switch (jwk.kty) {
    case 'EC': return `EC.${String(jwk.crv)}.${String(jwk.x)}.${String(jwk.y)}`;
    case 'RSA': return `RSA.${String(jwk.n)}.${String(jwk.e)}`;
    case 'OKP': return `OKP.${String(jwk.crv)}.${String(jwk.x)}`;
    default: return undefined;
  }
}

/** RFC 8705 §2.2: the certificate's public key is one of the registered keys. */
export function certificateKeyRegistered(cert: X509Certificate, keys: readonly PublicJwk[]): boolean {
  let presented: string | undefined;
  try {
    presented = keyMembers(cert.publicKey.export({ format: 'jwk' }) as Record<string, unknown>);
  } catch {
    return false;
  }
  return presented !== undefined && keys.some((k) => keyMembers(k) === presented);
}

/**
 * Checks `cert` against the client's registration for its mTLS method; throws CertificateRefused
 * with the reason. `cas`: the CAs trusted for tls_client_auth.
 */
export function checkClientCertificate(client: ClientRecord, cert: X509Certificate, cas: readonly X509Certificate[], now: number): void {
  if (client.tokenEndpointAuthMethod === 'self_signed_tls_client_auth') {
    // §2.2: no chain and no name to check; the key is the credential.
    if (client.jwks === null || !certificateKeyRegistered(cert, client.jwks.keys)) {
      throw new CertificateRefused('the client certificate\'s public key is not in the client\'s jwks');
    }
    return;
  }
  checkIssuedByTrustedCa(cert, cas, now);
  const expected = client.tlsClientAuth;
  if (expected === null) throw new CertificateRefused('client has no tls_client_auth subject or subjectAltName registered');
  if (!certificateNames(cert, expected.field, expected.value)) {
    throw new CertificateRefused(`client certificate does not carry the registered ${expected.field}`);
  }
}

/**
 * A SPIFFE X.509-SVID (SPIFFE X509-SVID §4, §5) as the credential of a federated client of a
 * spiffe trust: exactly one URI SAN, the client's federated_subject, in the trust domain; a leaf
 * (not a CA); valid now; signed directly by one of the trust bundle's X.509-SVID authorities
 * (itself valid now). Intermediates between the authority and the leaf are not followed. Throws
 * CertificateRefused with the reason.
 */
export function checkX509Svid(cert: X509Certificate, subject: string, trustDomain: string, authorities: readonly X509Certificate[], now: number): void {
  const uris = subjectAltNames(cert).filter(([type]) => type === 'URI');
  if (uris.length !== 1) throw new CertificateRefused(`client certificate has ${uris.length} URI SANs; an X.509-SVID has exactly one`);
  const id = uris[0]![1];
  if (!id.startsWith(`spiffe://${trustDomain}/`)) throw new CertificateRefused(`client certificate's URI SAN is not a SPIFFE ID of trust domain ${trustDomain}`);
  if (id !== subject) throw new CertificateRefused('client certificate\'s SPIFFE ID is not the client\'s federated subject');
  if (cert.ca) throw new CertificateRefused('client certificate is a CA certificate, not an X.509-SVID leaf');
  if (!validAt(cert, now)) throw new CertificateRefused('client certificate is expired or not yet valid');
  if (authorities.length === 0) throw new CertificateRefused(`trust domain ${trustDomain} has no X.509-SVID authorities`);
  const issuer = authorities.find((ca) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (issuer === undefined) throw new CertificateRefused(`client certificate is not signed by an X.509-SVID authority of trust domain ${trustDomain}`);
  if (!validAt(issuer, now)) throw new CertificateRefused('the X.509-SVID authority of the client certificate is expired or not yet valid');
}
