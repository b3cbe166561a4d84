// Certificate-bound access tokens (RFC 8705 §3): a client registered with
// tls_client_certificate_bound_access_tokens gets tokens whose cnf carries the SHA-256 thumbprint
// of the client certificate of its token request (§3.1 x5t#S256), whatever method authenticated
// it; without a certificate it gets none. A fapi2 client's token request with a certificate is
// bound to it too: mutual TLS is one of FAPI 2.0's two sender constraints (a DPoP proof, the
// next step, binds to its key instead).

import type { X509Certificate } from 'node:crypto';
import { OAuthError } from '../../ground/errors.js';
import type { ClientRecord } from '../../ground/records.js';
import type { OAuthRequest } from '../request/context.js';
import { certificateThumbprint } from '../client-auth/mutual-tls.js';

/** The thumbprint of each certificate object (one per TLS connection, or per Client-Cert header). */
const thumbprints = new WeakMap<X509Certificate, string>();

function thumbprintOf(cert: X509Certificate): string {
  let t = thumbprints.get(cert);
  if (t === undefined) {
    t = certificateThumbprint(cert);
    thumbprints.set(cert, t);
  }
  return t;
}

/**
 * The bind step for certificates: sets `req.binding` for a client whose tokens are bound to its
 * certificate; throws invalid_request when the request has none. A binding an earlier step set
 * (a DPoP proof) is kept: the token is sender-constrained either way, and has one cnf.
 */
export function bindCertificate(req: OAuthRequest, client: ClientRecord): void {
  if (req.binding !== undefined) return;
  const cert = req.clientCertificate;
  if (client.fapi2 && cert !== undefined) {
    req.binding = { x5tS256: thumbprintOf(cert) };
    return;
  }
  if (!client.tlsClientCertificateBoundAccessTokens) return;
  if (cert === undefined) {
    throw new OAuthError('invalid_request', 'This client\'s tokens are bound to its TLS client certificate: send the token request with one, to the mutual-TLS endpoint (mtls_endpoint_aliases).', {
      detail: req.clientCertificateProblem ?? 'certificate-bound tokens but no client certificate',
    });
  }
  req.binding = { x5tS256: thumbprintOf(cert) };
}
