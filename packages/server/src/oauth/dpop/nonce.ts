// DPoP server nonces (RFC 9449 §8), without state: a nonce is a time bucket and its HMAC under a
// key derived from the key-encryption key, so every instance (and worker) sharing the KEK makes
// and accepts the same nonces. A nonce is good in its bucket and the next one.

import { createHmac } from 'node:crypto';
import { sameBytes } from '../../ground/bytes.js';
import { OAuthError } from '../../ground/errors.js';

/** Length of a nonce's time bucket, in seconds: a nonce lives between one and two of them. */
export const DPOP_NONCE_PERIOD_S = 120;
const MAC_BYTES = 16;

export class DpopNonces {
  readonly #key: Buffer;
  readonly #now: () => number;
  /** The bucket and nonce last made: one HMAC per bucket, not per answer. */
  #bucket = -1;
  #nonce = '';

  /** `key`: 32 bytes for this purpose only (derived from the KEK, src/keys/kek.ts). */
  constructor(key: Buffer, now: () => number) {
    this.#key = key;
    this.#now = now;
  }

  /** The nonce to hand out now (DPoP-Nonce header). */
  current(): string {
    const bucket = Math.floor(this.#now() / 1000 / DPOP_NONCE_PERIOD_S);
    if (bucket !== this.#bucket) {
      this.#bucket = bucket;
      this.#nonce = this.#make(bucket);
    }
    return this.#nonce;
  }

  /** Throws use_dpop_nonce (with a fresh nonce in DPoP-Nonce) unless `nonce` is one of ours still in force. */
  check(nonce: unknown): void {
    if (typeof nonce !== 'string' || !this.#valid(nonce)) {
      throw new OAuthError('use_dpop_nonce', 'Authorization server requires nonce in DPoP proof.', {
        detail: nonce === undefined ? 'DPoP proof without a nonce' : 'DPoP proof nonce unknown or expired',
        headers: { 'dpop-nonce': this.current() },
      });
    }
  }

  #valid(nonce: string): boolean {
    const bytes = Buffer.from(nonce, 'base64url');
    if (bytes.length !== 4 + MAC_BYTES || bytes.toString('base64url') !== nonce) return false;
    const bucket = bytes.readUInt32BE(0);
    const current = Math.floor(this.#now() / 1000 / DPOP_NONCE_PERIOD_S);
    if (bucket !== current && bucket !== current - 1) return false;
    return sameBytes(Buffer.from(this.#make(bucket), 'base64url'), bytes);
  }

  #make(bucket: number): string {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(bucket >>> 0, 0);
    const mac = createHmac('sha256', this.#key).update('dpop-nonce').update(b).digest().subarray(0, MAC_BYTES);
    return Buffer.concat([b, mac]).toString('base64url');
  }
}
