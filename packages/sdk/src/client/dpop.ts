// RFC 9449 on the calling side: the client's DPoP key, proofs (§4.2) for the token endpoint and
// for resources (with `ath`), and the nonces servers hand out (§8, §9), remembered per server.

import { createPublicKey, randomBytes, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { accessTokenHash, DPOP_ALGORITHMS, DPOP_NONCE_HEADER, DPOP_TYP, htuOf, type DPoPAlgorithm } from '../shared/dpop.js';
import { SdkOptionsError } from '../shared/errors.js';
import { makeRoom } from '../shared/bounded-map.js';

export type DPoPKey = KeyObject | CryptoKey;

/**
 * `true` (or `{}`): a new ES256 key pair, made when the provider is created and held in memory
 * only. Or a key of your own: `privateKey` with its `alg` (and `publicKey` when `privateKey` is a
 * non-extractable CryptoKey, as in a CryptoKeyPair).
 */
export type DPoPOptions =
  | true
  | { alg?: DPoPAlgorithm; privateKey?: never; publicKey?: never }
  | { alg: DPoPAlgorithm; privateKey: DPoPKey; publicKey?: DPoPKey };

/** The proofs of one DPoP key; `TokenProvider.dpop` for calls made without createAuthFetch. */
export interface DPoPProver {
  readonly alg: DPoPAlgorithm;
  /** The key's JWK SHA-256 thumbprint (RFC 7638): the `cnf.jkt` of the tokens bound to it. */
  thumbprint(): Promise<string>;
  /**
   * A fresh proof for one request: `htm` the method, `htu` the URL without query and fragment,
   * `ath` when an access token is given, and the last nonce `url`'s server sent, if any.
   */
  proof(method: string, url: string | URL, accessToken?: string): Promise<string>;
  /** Keeps the DPoP-Nonce of a response (§8.2, §9) for the next proof to that server. */
  rememberNonce(url: string | URL, headers: Headers): void;
}

/** Servers whose nonce is kept at most; the oldest is forgotten first. */
const MAX_NONCES = 256;
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;

function publicJwk(jwk: JWK): JWK {
  const out: JWK = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out;
}

function isKey(value: unknown): value is DPoPKey {
  return value instanceof KeyObject || (typeof value === 'object' && value !== null && 'type' in value && 'algorithm' in value);
}

/** Checks the options synchronously; the key pair (made or given) is settled on first use. */
export function createDPoPProver(options: DPoPOptions, now: () => number): DPoPProver {
  const given = options === true ? {} : options;
  if (typeof given !== 'object' || given === null) throw new SdkOptionsError('dpop must be true or an object');
  const alg = given.alg ?? 'ES256';
  if (!(DPOP_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new SdkOptionsError(`dpop.alg must be one of ${DPOP_ALGORITHMS.join(', ')}, got ${JSON.stringify(alg)}`);
  }
  let keys: Promise<{ privateKey: DPoPKey; jwk: JWK }>;
  if (given.privateKey === undefined) {
    if (given.publicKey !== undefined) throw new SdkOptionsError('dpop.publicKey needs its dpop.privateKey');
    keys = generateKeyPair(alg).then(async ({ privateKey, publicKey }) => ({ privateKey, jwk: publicJwk(await exportJWK(publicKey)) }));
  } else {
    const { privateKey, publicKey } = given;
    if (given.alg === undefined) throw new SdkOptionsError('dpop.privateKey needs its dpop.alg');
    if (!isKey(privateKey) || privateKey.type !== 'private') throw new SdkOptionsError('dpop.privateKey must be a private KeyObject or CryptoKey');
    if (publicKey !== undefined && (!isKey(publicKey) || publicKey.type !== 'public')) {
      throw new SdkOptionsError('dpop.publicKey must be a public KeyObject or CryptoKey');
    }
    let pub: DPoPKey;
    if (publicKey !== undefined) pub = publicKey;
    else if (privateKey instanceof KeyObject) pub = createPublicKey(privateKey);
    else throw new SdkOptionsError('dpop.publicKey is required with a CryptoKey privateKey (give the CryptoKeyPair)');
    keys = exportJWK(pub).then((jwk) => ({ privateKey, jwk: publicJwk(jwk) }));
  }
  // A key that cannot be used is an options mistake: surface it on first use, not as an unhandled rejection.
  keys.catch(() => undefined);

  const nonces = new Map<string, string>();
  let jkt: Promise<string> | undefined;

  return {
    alg,
    thumbprint() {
      jkt ??= keys.then(({ jwk }) => calculateJwkThumbprint(jwk, 'sha256'));
      return jkt;
    },
    async proof(method, url, accessToken) {
      const htu = htuOf(url);
      if (htu === undefined) throw new SdkOptionsError('a DPoP proof needs an absolute http(s) URL');
      const { privateKey, jwk } = await keys;
      const claims: Record<string, unknown> = { htm: method.toUpperCase(), htu, jti: randomBytes(16).toString('base64url') };
      const nonce = nonces.get(new URL(htu).origin);
      if (nonce !== undefined) claims.nonce = nonce;
      if (accessToken !== undefined) claims.ath = accessTokenHash(accessToken);
      return new SignJWT(claims)
        .setProtectedHeader({ typ: DPOP_TYP, alg, jwk })
        .setIssuedAt(Math.floor(now() / 1000))
        .sign(privateKey);
    },
    rememberNonce(url, headers) {
      const nonce = headers.get(DPOP_NONCE_HEADER);
      // §8.1: a nonce is a non-empty string of NQCHAR.
      if (nonce === null || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(nonce)) return;
      const origin = new URL(url).origin;
      nonces.delete(origin);
      makeRoom(nonces, MAX_NONCES);
      nonces.set(origin, nonce);
    },
  };
}
