// The shape of client_ids (cl_ and 1 to 64 of [A-Za-z0-9_-]: the 16 base64url characters the
// server issues, or a name an operator chose), what may be logged, labelled or counted per client;
// and the prefixes of its client secrets and generated admin tokens, which secret scanners and the
// log lines' masking look for.

export const CLIENT_ID_PREFIX = 'cl_';
export const SECRET_PREFIX = 'm2m_cs_';
/** Prefix of the admin tokens the server generates (a configured token may have any form). */
export const ADMIN_TOKEN_PREFIX = 'm2m_at_';

/** Most characters after the prefix of a client_id an operator chooses. */
export const MAX_CHOSEN_CLIENT_ID_LENGTH = 64;

const CLIENT_ID_SHAPE = new RegExp(`^${CLIENT_ID_PREFIX}[A-Za-z0-9_-]{1,${MAX_CHOSEN_CLIENT_ID_LENGTH}}$`);

/**
 * True when `value` has the shape of a client_id this server issues or accepts from an operator.
 * Only such values are logged, labelled or counted per client: anything else may be a secret
 * sent in the wrong field (a secret starts m2m_cs_, never cl_), or garbage a caller could use to
 * mint log lines, metric labels or limiter keys.
 */
export function hasIssuedClientIdShape(value: string): boolean {
  return CLIENT_ID_SHAPE.test(value);
}
