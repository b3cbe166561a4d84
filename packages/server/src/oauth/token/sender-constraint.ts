// The token endpoint's bind step: what the request proves possession of becomes its binding
// (../request/binding.ts): a DPoP proof (RFC 9449 §5) here; a client certificate (RFC 8705 §3)
// is bound before, by ./certificate-binding.ts. A client that must be sender-constrained
// (`dpop_bound_access_tokens`, RFC 9449 §5.2; `fapi2`, FAPI 2.0 Security Profile, sender-constrained tokens)
// gets nothing without a binding.

import { OAuthError } from '../../ground/errors.js';
import { DPOP_SIGNING_ALGS, FAPI2_ALGS, FAPI2_AUTH_METHODS } from '../../ground/names.js';
import type { ClientRecord } from '../../ground/records.js';
import type { OAuthRequest } from '../request/context.js';
import { singleProof, type DpopProofs } from '../dpop/proof.js';
import type { DpopNonces } from '../dpop/nonce.js';
import type { ConsumeOnce } from '../dpop/replay.js';

export interface SenderConstraintOptions {
  proofs: DpopProofs;
  /** The URLs a proof's htu may name: the token endpoint as the issuer gives it. */
  htu: () => readonly string[];
  consumeOnce: ConsumeOnce;
  /** Server nonces (M2M_AUTH_DPOP_NONCE); none when absent. */
  nonces?: DpopNonces;
  now: () => number;
}

const ANY_DPOP_ALG: readonly string[] = DPOP_SIGNING_ALGS;
const FAPI2_DPOP_ALGS: readonly string[] = DPOP_SIGNING_ALGS.filter((a) => FAPI2_ALGS.includes(a));

export function senderConstraint(o: SenderConstraintOptions): (req: OAuthRequest, client: ClientRecord) => void | Promise<void> {
  const nonce = o.nonces && ((n: unknown) => o.nonces!.check(n));
  const bindDpop = (req: OAuthRequest, client: ClientRecord, proof: string): void | Promise<void> => {
    const jkt = o.proofs.check(proof, {
      htu: o.htu(),
      algorithms: client.fapi2 ? FAPI2_DPOP_ALGS : ANY_DPOP_ALG,
      now: o.now(),
      consumeOnce: o.consumeOnce,
      ...(nonce && { nonce }),
    });
    // A DPoP proof and a client certificate together: the token is bound to the DPoP key.
    if (typeof jkt === 'string') req.binding = { jkt };
    else return jkt.then((key) => void (req.binding = { jkt: key }));
  };
  return (req, client) => {
    if (client.fapi2 && !FAPI2_AUTH_METHODS.includes(client.tokenEndpointAuthMethod)) {
      throw new OAuthError('invalid_client', 'Client authentication failed.', {
        detail: `fapi2 client authenticated with ${client.tokenEndpointAuthMethod}`, clientId: client.clientId,
      });
    }
    const proof = singleProof(req.dpop);
    if (proof !== undefined) return bindDpop(req, client, proof);
    if (req.binding !== undefined) return;
    // RFC 9449 §5.2: such a client's token requests without a proof are refused.
    if (client.dpopBoundAccessTokens) {
      throw new OAuthError('invalid_dpop_proof', 'A DPoP proof is required for this client.', { detail: 'no DPoP proof from a dpop_bound_access_tokens client' });
    }
    if (client.fapi2) {
      throw new OAuthError('invalid_request', 'This client must obtain sender-constrained tokens: send a DPoP proof, or a client certificate over mutual TLS.', {
        detail: 'fapi2 client without a DPoP proof or client certificate',
      });
    }
  };
}
