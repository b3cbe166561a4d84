// RFC 7517 §4 / RFC 7518 §6 public keys a private_key_jwt client registers (RFC 7591 `jwks`): each
// key is checked, then stored as a canonical public key built fresh from the members its `kty`
// defines, never as the object received, so nothing else a caller sent (a private member hidden
// under "__proto__" or in a nested object, an unknown member) is ever stored or served.

import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { CLIENT_ASSERTION_ALGS } from '../ground/names.js';
import type { PublicJwk } from '../ground/records.js';
import { describeJsonType, isPlainObject } from '../ground/json.js';

/** Bad client metadata; the registry answers it with 400 (see metadata.ts). */
type Refuse = (field: string, message: string) => never;

/** Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The public members each supported `kty` defines (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2), in the order they are stored. */
const PUBLIC_MEMBERS = {
  EC: ['crv', 'x', 'y'],
  RSA: ['n', 'e'],
  OKP: ['crv', 'x'],
} as const satisfies Record<string, readonly string[]>;

type Kty = keyof typeof PUBLIC_MEMBERS;

const SIGNING_CURVES: Record<string, readonly string[]> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519', 'Ed448'],
};
const ALG_FAMILY: Record<Kty, (alg: string, crv: unknown) => boolean> = {
  EC: (alg, crv) =>
    (alg === 'ES256' && crv === 'P-256') || (alg === 'ES384' && crv === 'P-384') || (alg === 'ES512' && crv === 'P-521'),
  RSA: (alg) => /^(RS|PS)(256|384|512)$/.test(alg),
  OKP: (alg, crv) => alg === 'EdDSA' || (alg === 'Ed25519' && crv === 'Ed25519'),
};
const MIN_RSA_BITS = 2048;
const MAX_KID_LENGTH = 200;
/** A base64url value without padding (RFC 7515 §2); the longest, an RSA-16384 modulus, is under 2,800 characters. */
const BASE64URL = /^[A-Za-z0-9_-]{1,4096}$/;

/**
 * The first private or symmetric member anywhere in `value` (its own members, nested objects and
 * arrays, whatever their names: "__proto__" is an ordinary member of a parsed JSON object), as a
 * path below the key; undefined when there is none. Iterative, so no nesting depth overflows.
 */
export function findPrivateMember(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    } else if (typeof v === 'object' && v !== null) {
      const names = Object.keys(v);
      const found = PRIVATE_JWK_MEMBERS.find((m) => names.includes(m));
      if (found !== undefined) return path === '' ? found : `${path}.${found}`;
      for (let i = names.length - 1; i >= 0; i--) {
        const name = names[i]!;
        stack.push([(v as Record<string, unknown>)[name], path === '' ? name : `${path}.${name}`]);
      }
    }
  }
  return undefined;
}

/**
 * A registered key, checked: an asymmetric signing key of a supported kty and curve, no private or
 * symmetric member anywhere, valid public members, optional kid, alg and use "sig". Returns the
 * canonical public key: kty, its public members, and kid, alg, use when given; nothing else.
 */
export function parseClientJwk(key: unknown, where: string, refuse: Refuse): PublicJwk {
  const bad: (message: string) => never = (message) => refuse('jwks', `${where} ${message}`);
  if (!isPlainObject(key)) bad(`must be a JSON object, got ${describeJsonType(key)}`);
  const jwk = key as Record<string, unknown>;
  const { kty } = jwk;
  if (!Object.hasOwn(jwk, 'kty') || typeof kty !== 'string') bad('has no kty');
  if (kty === 'oct') bad('is a symmetric key (kty "oct"); register public keys only');
  if (kty !== 'EC' && kty !== 'RSA' && kty !== 'OKP') bad(`has an unsupported kty ${JSON.stringify(kty)} (EC, RSA or OKP)`);
  const privateMember = findPrivateMember(jwk);
  if (privateMember !== undefined) bad(`contains the private key member "${privateMember}"; register the public key only`);
  const type = kty as Kty;
  const own = (name: string): unknown => (Object.hasOwn(jwk, name) ? jwk[name] : undefined);

  const curves = SIGNING_CURVES[type];
  const crv = own('crv');
  if (curves && !curves.includes(crv as string)) {
    bad(`has an unsupported crv ${JSON.stringify(crv)} for ${type} (${curves.join(', ')})`);
  }
  // Built fresh: only what this kty defines, each a string checked here.
  const canonical: PublicJwk = { kty: type };
  for (const name of PUBLIC_MEMBERS[type]) {
    const v = own(name);
    if (typeof v !== 'string' || (name !== 'crv' && !BASE64URL.test(v))) bad(`${name} must be a base64url string`);
    canonical[name] = v;
  }
  const use = own('use');
  if (use !== undefined && use !== 'sig') bad('use must be "sig"');
  const alg = own('alg');
  if (alg !== undefined) {
    if (typeof alg !== 'string' || !(CLIENT_ASSERTION_ALGS as readonly string[]).includes(alg)) {
      bad(`alg must be one of ${CLIENT_ASSERTION_ALGS.join(', ')}`);
    }
    if (!ALG_FAMILY[type](alg, crv)) bad(`alg ${alg} does not fit a ${type} key`);
  }
  const kid = own('kid');
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > MAX_KID_LENGTH)) {
    bad(`kid must be a non-empty string of at most ${MAX_KID_LENGTH} characters`);
  }
  let bits: number | undefined;
  try {
    // The canonical key is what is checked, as it is what is stored.
    bits = createPublicKey({ key: canonical as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails?.modulusLength;
  } catch {
    bad(`is not a valid ${type} public key`);
  }
  if (type === 'RSA' && (bits ?? 0) < MIN_RSA_BITS) bad(`RSA modulus must be at least ${MIN_RSA_BITS} bits`);
  if (kid !== undefined) canonical.kid = kid as string;
  if (alg !== undefined) canonical.alg = alg as string;
  if (use !== undefined) canonical.use = 'sig';
  return canonical;
}

/**
 * The canonical public form of a stored key, without checks: a record written before keys were
 * stored canonically is served and used as this projection, never as stored.
 */
export function publicJwk(stored: PublicJwk): PublicJwk {
  const kty = stored.kty;
  const out: PublicJwk = { kty };
  const members: readonly string[] = Object.hasOwn(PUBLIC_MEMBERS, kty) ? PUBLIC_MEMBERS[kty as Kty] : [];
  for (const name of [...members, 'kid', 'alg', 'use']) {
    if (Object.hasOwn(stored, name) && typeof stored[name] === 'string') out[name] = stored[name];
  }
  return out;
}
