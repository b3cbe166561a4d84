// The shape of the client_ids this server issues (cl_ and 16 base64url characters), what may be
// logged, labelled or counted per client; and the prefixes of its client secrets and generated
// admin tokens, which secret scanners and the log lines' masking look for.

export const CLIENT_ID_PREFIX = 'cl_';
export const SECRET_PREFIX = 'm2m_cs_';
/** Prefix of the admin tokens the server generates (a configured token may have any form). */
export const ADMIN_TOKEN_PREFIX = 'm2m_at_';

const ISSUED_CLIENT_ID = new RegExp(`^${CLIENT_ID_PREFIX}[A-Za-z0-9_-]{16}$`);

/**
 * True when `value` has the shape of the client_ids the registry issues. Only such values are
 * logged, labelled or counted per client: anything else may be a secret sent in the wrong field,
 * or garbage a caller could use to mint log lines, metric labels or limiter keys.
 */
export function hasIssuedClientIdShape(value: string): boolean {
  return ISSUED_CLIENT_ID.test(value);
}
