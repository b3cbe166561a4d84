// The admin API view of a signing key: an allowlist of public fields, times in epoch seconds.

import { epochSeconds } from '../clients/wire.js';

export interface KeyWire {
  kid: string;
  alg: string;
  /** pending (published, not signing yet), active, retired, or revoked (unpublished, its tokens refused). */
  status: string | null;
  created_at: number | null;
  activates_at: number | null;
  retired_at: number | null;
  expires_at: number | null;
  revoked_at: number | null;
}

function seconds(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? epochSeconds(v) : null;
}

function text(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/**
 * Maps a key summary (kid, alg, status and epoch-ms times, as KeyRing.list() returns) to the
 * wire form. Only the named fields are copied, so private key material can never reach a response.
 */
export function keyToWire(entry: unknown): KeyWire {
  const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
  return {
    kid: text(e.kid) ?? '',
    alg: text(e.alg) ?? '',
    status: text(e.status),
    created_at: seconds(e.createdAt),
    activates_at: seconds(e.activatesAt),
    retired_at: seconds(e.retiredAt),
    expires_at: seconds(e.expiresAt),
    revoked_at: seconds(e.revokedAt),
  };
}
