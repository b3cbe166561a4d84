// Client-supplied text in log and audit lines (a scope, a resource, an address from
// X-Forwarded-For, an error detail echoing input): each value bounded to MAX_LOG_VALUE_LENGTH
// characters, marked with its full length when cut, and anything shaped like one of our client
// secrets (m2m_cs_...), admin tokens (m2m_at_...) or a JWT, or equal to the configured admin token,
// masked before it is cut. The redaction list of logger.ts censors by member name; this censors by
// value, at any depth of a line. Tested in test/observability/redaction.test.ts.
//
// Values arrive on the hot path (every denial writes one audit line), so the usual value, short and
// with neither "m2m_" nor "eyJ" in it, costs a length check and two substring searches.

import { ADMIN_TOKEN_PREFIX, SECRET_PREFIX } from '../ground/client-id.js';
import { SENSITIVE_FIELDS } from './logger.js';

/** Most characters of one client-supplied value a log line carries. */
export const MAX_LOG_VALUE_LENGTH = 256;

/** What stands in a line for a masked value. */
export const LOG_MASKS = Object.freeze({
  clientSecret: '[REDACTED client secret]',
  adminToken: '[REDACTED admin token]',
  jwt: '[REDACTED JWT]',
  /** A member whose name is on the redaction list, at any depth. */
  field: '[REDACTED]',
});

/** The marker after a value cut to MAX_LOG_VALUE_LENGTH; `length` is the value's full length. */
export function truncationMarker(length: number): string {
  return `...[truncated: ${length} characters]`;
}

/** Deeper than this, a line's nested value is replaced whole (no audit payload comes near it). */
const MAX_DEPTH = 8;
/** Most elements of one array a line keeps (an audience list has at most 100). */
const MAX_ELEMENTS = 100;

// Our prefixes and what follows them: base64url (the secret's or token's random part).
const PREFIXED = new RegExp(`(${SECRET_PREFIX}|${ADMIN_TOKEN_PREFIX})[A-Za-z0-9_-]*`, 'g');
// A run of base64url characters and dots: JWT candidates are looked for within these only, one
// pass over the value (a regex for the JWT itself backtracks over long runs without dots).
const DOTTED_RUN = /[A-Za-z0-9_.-]+/g;
const SENSITIVE = new Set(SENSITIVE_FIELDS);

export interface LogSafetyOptions {
  /** Values masked wherever they appear, whatever their shape: the configured admin token. */
  secrets?: ReadonlyArray<string | undefined>;
  /** MAX_LOG_VALUE_LENGTH unless given (tests). */
  maxLength?: number;
}

/**
 * `run` (base64url and dots) with every JWT-shaped part masked: from an "eyJ" in one segment
 * through the end of the run, when at least two more segments follow (a JWS has three, a JWE five).
 */
function maskJwtsInRun(run: string): string {
  if (!run.includes('eyJ') || run.indexOf('.') === -1) return run;
  const segments = run.split('.');
  for (let i = 0; i + 2 < segments.length; i++) {
    const at = segments[i]!.indexOf('eyJ');
    if (at === -1) continue;
    return [...segments.slice(0, i), segments[i]!.slice(0, at) + LOG_MASKS.jwt].join('.');
  }
  return run;
}

/** Bounding and masking of client-supplied values for one server (its admin token). */
export class LogSafety {
  readonly #secrets: readonly string[];
  readonly #shortestSecret: number;
  readonly #max: number;

  constructor(options: LogSafetyOptions = {}) {
    // Only values long enough to be secrets: a short one would mask ordinary words.
    this.#secrets = (options.secrets ?? []).filter((s): s is string => typeof s === 'string' && s.length >= 16);
    this.#shortestSecret = Math.min(...this.#secrets.map((s) => s.length));
    this.#max = options.maxLength ?? MAX_LOG_VALUE_LENGTH;
  }

  /** True when `s` may hold something to mask; the fast checks first. */
  #mayHoldSecret(s: string): boolean {
    if (s.includes('m2m_') || s.includes('eyJ')) return true;
    if (s.length < this.#shortestSecret) return false;
    for (const secret of this.#secrets) if (s.includes(secret)) return true;
    return false;
  }

  /** `s` as a log line may carry it: masked, then bounded with a marker giving its full length. */
  value(s: string): string {
    if (s.length <= this.#max && !this.#mayHoldSecret(s)) return s;
    let masked = s;
    // The configured token first: it may contain what the patterns below would cut in two.
    for (const secret of this.#secrets) if (masked.includes(secret)) masked = masked.split(secret).join(LOG_MASKS.adminToken);
    if (masked.includes('m2m_')) {
      masked = masked.replace(PREFIXED, (_m, prefix: string) => (prefix === SECRET_PREFIX ? LOG_MASKS.clientSecret : LOG_MASKS.adminToken));
    }
    if (masked.includes('eyJ')) masked = masked.replace(DOTTED_RUN, maskJwtsInRun);
    if (masked.length <= this.#max) return masked;
    // Never end on the first half of a surrogate pair.
    const code = masked.charCodeAt(this.#max - 1);
    const end = code >= 0xd800 && code <= 0xdbff ? this.#max - 1 : this.#max;
    return masked.slice(0, end) + truncationMarker(s.length);
  }

  /**
   * Any value of a line, made safe at any depth: strings as value(), members named on the
   * redaction list censored, arrays and plain objects copied with their members made safe. Other
   * values (numbers, booleans, null, errors) are returned as they are.
   */
  member(v: unknown, depth = 0): unknown {
    if (typeof v === 'string') return this.value(v);
    if (typeof v !== 'object' || v === null || v instanceof Error) return v;
    if (depth >= MAX_DEPTH) return '[nested too deep]';
    if (Array.isArray(v)) {
      const n = Math.min(v.length, MAX_ELEMENTS);
      const out: unknown[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = this.member(v[i], depth + 1);
      if (v.length > n) out.push(`...[truncated: ${v.length} elements]`);
      return out;
    }
    return this.members(v as Record<string, unknown>, {}, depth + 1);
  }

  /** The members of `from`, made safe, added to `into` one by one (a log line is built this way). */
  members(from: object, into: Record<string, unknown>, depth = 0): Record<string, unknown> {
    for (const key of Object.keys(from)) {
      const v = (from as Record<string, unknown>)[key];
      if (v === undefined) continue;
      // Numbers and booleans, most members of an audit line, need nothing.
      const safe = typeof v === 'number' || typeof v === 'boolean' ? v : SENSITIVE.has(key) ? LOG_MASKS.field : this.member(v, depth);
      // A member named "__proto__" stays a member (an assignment would set the prototype).
      if (key === '__proto__') Object.defineProperty(into, key, { value: safe, enumerable: true, writable: true, configurable: true });
      else into[key] = safe;
    }
    return into;
  }
}

/** Patterns only (no configured admin token): for lines written where no server's token is known. */
export const DEFAULT_LOG_SAFETY = new LogSafety();
