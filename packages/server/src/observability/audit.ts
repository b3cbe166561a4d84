// Audit log: every core event becomes one structured log line with a `type` (what), an `actor`
// (who: a client_id, "admin", "system" or "anonymous"), pino's `time` (when) and, for events that
// came with a request, `ip` and `requestId` (from where). Payloads carry identifiers (client_id,
// kid, jti), never a secret, an assertion or a token; the logger's redaction list is the backstop.
// Values a client supplied (a scope, a resource, an error detail) are bounded and masked
// (log-safety.ts).
//
// The two high-volume successes (token.issued, token.introspected with an active answer) already
// have one request line each; they are sampled (M2M_AUTH_AUDIT_SAMPLE_RATE) and logged at info
// when chosen. Failures, revocations, client, key and admin events are never sampled.

import type { Logger } from 'pino';
import type { EventBus, EventMap, EventName } from './events.js';
import { DEFAULT_LOG_SAFETY, type LogSafety } from './log-safety.js';

export const DEFAULT_AUDIT_SAMPLE_RATE = 0.01;

export interface AuditLogOptions {
  /** Fraction of token.issued / active token.introspected events logged, 0..1. */
  sampleRate?: number;
  /** Uniform in [0, 1) (tests). */
  random?: () => number;
  /** Bounds and masks every value of a line (src/observability/log-safety.ts); patterns only when absent. */
  safety?: LogSafety;
}

const WARN = new Set<EventName>(['admin.auth_failed', 'key.rotation_failed', 'federation.keys_unavailable', 'federation.jti_replayed']);

/** Who caused the event: the client for token events, the admin API for client changes. */
export function auditActor<E extends EventName>(type: E, payload: EventMap[E]): string {
  const p = payload as { clientId?: string; callerClientId?: string };
  if (type.startsWith('token.')) return p.callerClientId ?? p.clientId ?? 'anonymous';
  if (type.startsWith('client.') || type.startsWith('trust.') || type === 'key.revoked') return 'admin';
  if (type === 'admin.auth_failed') return 'anonymous';
  // Other key events come from the key ring: automatic rotation, maintenance, or an admin's rotate request.
  return 'system';
}

function sampled<E extends EventName>(type: E, payload: EventMap[E]): boolean {
  if (type === 'token.issued') return true;
  return type === 'token.introspected' && (payload as EventMap['token.introspected']).active;
}

export function subscribeAuditLog(events: EventBus, logger: Logger, options: AuditLogOptions = {}): () => void {
  const rate = options.sampleRate ?? DEFAULT_AUDIT_SAMPLE_RATE;
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`audit sample rate must be between 0 and 1, got ${rate}`);
  const random = options.random ?? Math.random;
  const safety = options.safety ?? DEFAULT_LOG_SAFETY;
  const audit = logger.child({ audit: true });
  // Each line is built member by member, every value made safe: a scope, a resource or an error
  // detail may carry what a client sent (bounded, secrets masked, at any depth).
  const lineOf = <E extends EventName>(type: E, payload: EventMap[E]): Record<string, unknown> =>
    safety.members(payload, { type, actor: safety.value(auditActor(type, payload)) });
  return events.onAny((type, payload) => {
    if (sampled(type, payload)) {
      // rate 0 never logs and rate 1 always does, whatever random() returns in [0, 1).
      if (rate === 0 || random() >= rate) return;
      const sampledLine = lineOf(type, payload);
      sampledLine.sample_rate = rate;
      audit.info(sampledLine, type);
      return;
    }
    const line = lineOf(type, payload);
    if (WARN.has(type) || (type === 'federation.keys_fetched' && line.result === 'failed')) audit.warn(line, type);
    else audit.info(line, type);
  });
}
