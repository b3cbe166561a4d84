// Audit log: every core event becomes one structured log line with a `type`. The two
// high-volume successes (token.issued, token.introspected) are already one request line each,
// so they are logged at debug; failures and admin events always at info or above.

import type { Logger } from 'pino';
import type { EventBus } from './events.js';

const HIGH_VOLUME = new Set(['token.issued', 'token.introspected']);
const WARN = new Set(['admin.auth_failed', 'key.rotation_failed']);

export function subscribeAuditLog(events: EventBus, logger: Logger): () => void {
  const audit = logger.child({ audit: true });
  return events.onAny((type, payload) => {
    const line: Record<string, unknown> = { type, ...payload };
    if (HIGH_VOLUME.has(type)) audit.debug(line, type);
    else if (WARN.has(type)) audit.warn(line, type);
    else audit.info(line, type);
  });
}
