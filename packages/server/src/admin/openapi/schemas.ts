// JSON Schemas (2020-12, the dialect of OpenAPI 3.1) of the admin API's bodies: what the routes
// validate requests with (routes.ts) and what the OpenAPI document is generated from (document.ts).
//
// The hand-written checks (clients/metadata.ts, request.ts) stay the authority on meaning and on
// the words of every error: a schema refuses only what they refuse too (it may let more through,
// never less), so a request the schema refuses is answered with the message of the check that
// refuses it (see routes.ts).
//
// Adding a client field: one entry in CLIENT_FIELDS below (`input` when create and update accept
// it, `wire` for what every answer shows), beside its rule in clients/metadata.ts and its wire form
// in clients/wire.ts; then `npm run docs:openapi`. test/admin/openapi.test.ts fails until the
// three agree (a real answer with a member the schema does not name is refused).

import { GRANT_TYPES, RESERVED_CLAIM_NAMES, TOKEN_ENDPOINT_AUTH_METHODS } from '../../ground/names.js';
import { CLIENT_ID_PREFIX, MAX_CHOSEN_CLIENT_ID_LENGTH } from '../../ground/client-id.js';
import { TRUST_KINDS } from '../../ground/trusts.js';
import {
  MAX_AUDIENCES, MAX_CLAIM_NAME_LENGTH, MAX_CLAIMS, MAX_GRACE_PERIOD, MAX_KEYS, MAX_NAME_LENGTH, MAX_RATE_LIMIT, MAX_URI_LENGTH,
} from '../../clients/metadata.js';

/** A JSON Schema object (2020-12). */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** Longest path parameter (client_id, kid) a route reads: Fastify's default maxParamLength. */
export const MAX_ID_LENGTH = 100;

// RFC 6749 §3.3: scope tokens of NQCHAR separated by single spaces; "" is no scope.
const NQCHARS = '[\\x21\\x23-\\x5B\\x5D-\\x7E]+';
const SCOPE_STRING: JsonSchema = { type: 'string', pattern: `^(?:${NQCHARS}(?: ${NQCHARS})*)?$` };

const uriList = (description: string, minItems = 0): JsonSchema => ({
  type: 'array',
  description,
  ...(minItems > 0 ? { minItems } : {}),
  maxItems: MAX_AUDIENCES,
  uniqueItems: true,
  items: { type: 'string', maxLength: MAX_URI_LENGTH, description: 'An absolute URI without a fragment (RFC 8707 §2)' },
});

const nullable = (schema: JsonSchema): JsonSchema => ({ ...schema, type: [schema.type, 'null'] });

const EPOCH_SECONDS: JsonSchema = { type: 'integer', description: 'Epoch seconds (NumericDate)' };

/** A public JWK as stored and shown: built from what its kty defines, nothing else. */
export const PUBLIC_JWK: JsonSchema = {
  type: 'object',
  description: 'A public key (RFC 7517), kept as the members its kty defines plus kid, alg and use',
  required: ['kty'],
  properties: {
    kty: { type: 'string', enum: ['EC', 'RSA', 'OKP'] },
    kid: { type: 'string' },
    alg: { type: 'string' },
    use: { type: 'string' },
    crv: { type: 'string' },
    x: { type: 'string' },
    y: { type: 'string' },
    n: { type: 'string' },
    e: { type: 'string' },
  },
  additionalProperties: false,
};

/** A trust's key: a public key, or a SPIFFE bundle's X.509-SVID authority (use "x509-svid") with its CA certificate in x5c. */
const TRUST_JWK: JsonSchema = {
  ...PUBLIC_JWK,
  description: 'A public key (RFC 7517), kept as the members its kty defines plus kid, alg and use; an X.509-SVID authority of a SPIFFE bundle (use "x509-svid") keeps x5c, its CA certificate',
  properties: { ...(PUBLIC_JWK.properties as Record<string, JsonSchema>), x5c: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 } },
};

/** A field of a client or a trusted issuer. */
interface Field {
  /** What create and update accept; absent for a read-only field. */
  readonly input?: JsonSchema;
  /** What every answer that shows one has. */
  readonly wire: JsonSchema;
}

/** The client fields, in the order answers show them: the one place a client field is added. */
export const CLIENT_FIELDS: Readonly<Record<string, Field>> = {
  client_id: {
    wire: { type: 'string', description: `${CLIENT_ID_PREFIX} and 1 to ${MAX_CHOSEN_CLIENT_ID_LENGTH} of [A-Za-z0-9_-]` },
  },
  client_name: {
    input: { type: 'string', minLength: 1, maxLength: MAX_NAME_LENGTH, description: 'A name for people; no control characters' },
    wire: { type: 'string' },
  },
  scope: {
    input: { ...SCOPE_STRING, description: 'The scope tokens the client may ask for, space-delimited (RFC 6749 §3.3)' },
    wire: { type: 'string' },
  },
  default_scope: {
    input: nullable({ ...SCOPE_STRING, description: 'What a request that names no scope gets: a subset of scope; null = all of scope' }),
    wire: { type: ['string', 'null'] },
  },
  audience: {
    input: uriList('The resource servers the client may get tokens for (RFC 8707 resources); required with client_credentials'),
    wire: { type: 'array', items: { type: 'string' } },
  },
  default_audience: {
    input: nullable(uriList('What a request that names no resource gets: a subset of audience; null = all of audience', 1)),
    wire: { type: ['array', 'null'], items: { type: 'string' } },
  },
  grant_types: {
    input: {
      type: 'array', uniqueItems: true, items: { type: 'string', enum: [...GRANT_TYPES] },
      description: '["client_credentials"] (the default), or [] for a client that only introspects or revokes',
    },
    wire: { type: 'array', items: { type: 'string' } },
  },
  resource_uris: {
    input: uriList('The audiences this client answers to as a resource server (introspection)'),
    wire: { type: 'array', items: { type: 'string' } },
  },
  token_endpoint_auth_method: {
    input: { type: 'string', enum: [...TOKEN_ENDPOINT_AUTH_METHODS], description: 'Default client_secret_basic' },
    wire: { type: 'string', enum: [...TOKEN_ENDPOINT_AUTH_METHODS] },
  },
  jwks: {
    input: {
      type: ['object', 'null'],
      description: 'The public keys of a private_key_jwt client; private and symmetric members are refused',
      required: ['keys'],
      properties: { keys: { type: 'array', minItems: 1, maxItems: MAX_KEYS, items: { type: 'object' } } },
      additionalProperties: false,
    },
    wire: {
      type: ['object', 'null'],
      required: ['keys'],
      properties: { keys: { type: 'array', items: PUBLIC_JWK } },
      additionalProperties: false,
    },
  },
  access_token_ttl: {
    input: {
      type: ['integer', 'null'], minimum: 1,
      description: 'Lifetime of its access tokens in seconds, within M2M_AUTH_TOKEN_TTL_MIN and _MAX; null = the server default',
    },
    wire: { type: ['integer', 'null'] },
  },
  rate_limit: {
    input: {
      type: ['number', 'null'], minimum: 0, maximum: MAX_RATE_LIMIT,
      description: 'Token requests a second (fractions allowed; 0 = no limit); null = the server default',
    },
    wire: { type: ['number', 'null'] },
  },
  token_reuse: {
    input: { type: 'boolean', description: 'Answer a repeated request with the last token while it has more than half its lifetime left; default false' },
    wire: { type: 'boolean' },
  },
  disabled: {
    input: { type: 'boolean', description: 'A disabled client gets no token and its tokens are inactive; default false' },
    wire: { type: 'boolean' },
  },
  claims: {
    input: {
      type: ['object', 'null'],
      description: `Custom claims copied into every access token (JSON values, at most ${MAX_CLAIMS} names); {} or null = none. `
        + 'Names the server sets or the RFCs reserve are refused',
      maxProperties: MAX_CLAIMS,
      propertyNames: { type: 'string', minLength: 1, maxLength: MAX_CLAIM_NAME_LENGTH, not: { enum: [...RESERVED_CLAIM_NAMES, '__proto__'] } },
    },
    wire: { type: 'object' },
  },
  dpop_bound_access_tokens: {
    input: { type: 'boolean', description: 'RFC 9449 §5.2: every token request must carry a DPoP proof, and every token is DPoP-bound; default false' },
    wire: { type: 'boolean' },
  },
  fapi2: {
    input: {
      type: 'boolean',
      description: 'FAPI 2.0 Security Profile: private_key_jwt or mutual TLS only, sender-constrained tokens only, PS256, ES256 or EdDSA only; default false',
    },
    wire: { type: 'boolean' },
  },
  tls_client_auth_subject_dn: {
    input: { type: ['string', 'null'], description: 'tls_client_auth (RFC 8705 §2.1.2): the subject DN of its certificate (RFC 4514); exactly one of the five; null removes it' },
    wire: { type: ['string', 'null'] },
  },
  tls_client_auth_san_dns: {
    input: { type: ['string', 'null'], description: 'tls_client_auth (RFC 8705 §2.1.2): a subjectAltName DNS name of its certificate; exactly one of the five; null removes it' },
    wire: { type: ['string', 'null'] },
  },
  tls_client_auth_san_uri: {
    input: { type: ['string', 'null'], description: 'tls_client_auth (RFC 8705 §2.1.2): a subjectAltName URI of its certificate; exactly one of the five; null removes it' },
    wire: { type: ['string', 'null'] },
  },
  tls_client_auth_san_ip: {
    input: { type: ['string', 'null'], description: 'tls_client_auth (RFC 8705 §2.1.2): a subjectAltName IP address of its certificate; exactly one of the five; null removes it' },
    wire: { type: ['string', 'null'] },
  },
  tls_client_auth_san_email: {
    input: { type: ['string', 'null'], description: 'tls_client_auth (RFC 8705 §2.1.2): a subjectAltName e-mail address of its certificate; exactly one of the five; null removes it' },
    wire: { type: ['string', 'null'] },
  },
  tls_client_certificate_bound_access_tokens: {
    input: { type: 'boolean', description: 'RFC 8705 §3: tokens bound to the TLS client certificate of the token request (cnf x5t#S256); default false' },
    wire: { type: 'boolean' },
  },
  federated_issuer: {
    input: { type: ['string', 'null'], description: 'federated_jwt: the name of the trusted issuer whose platform tokens authenticate the client' },
    wire: { type: ['string', 'null'] },
  },
  federated_subject: {
    input: { type: ['string', 'null'], description: 'federated_jwt: the exact sub of those platform tokens (a SPIFFE ID in the trust domain for a spiffe trust)' },
    wire: { type: ['string', 'null'] },
  },
  federated_claims: {
    input: { type: ['object', 'null'], description: 'federated_jwt: claims the platform token must carry, with these exact JSON values; {} or null = none' },
    wire: { type: ['object', 'null'] },
  },
  tokens_revoked_at: {
    wire: { ...nullable(EPOCH_SECONDS), description: 'Kill switch instant: tokens issued before it are inactive; null = never used' },
  },
  created_at: { wire: EPOCH_SECONDS },
  updated_at: { wire: EPOCH_SECONDS },
};

/** The input or wire schemas of a field table (CLIENT_FIELDS, TRUST_FIELDS), by wire name. */
function pick(fields: Readonly<Record<string, Field>>, kind: 'input' | 'wire'): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [name, field] of Object.entries(fields)) {
    const schema = field[kind];
    if (schema !== undefined) out[name] = schema;
  }
  return out;
}

/** PATCH /admin/clients/{id}: any of the metadata fields. */
export const CLIENT_UPDATE: JsonSchema = {
  type: 'object',
  description: 'Client metadata to change (RFC 7591 §2 names); fields left out keep their value',
  properties: pick(CLIENT_FIELDS, 'input'),
  additionalProperties: false,
};

/** POST /admin/clients: the metadata, and optionally a chosen client_id and the digest of an existing secret. */
export const CLIENT_CREATE: JsonSchema = {
  type: 'object',
  description: 'A new client (RFC 7591 §2 names)',
  required: ['client_name'],
  properties: {
    client_id: {
      type: 'string', pattern: `^${CLIENT_ID_PREFIX}[A-Za-z0-9_-]{1,${MAX_CHOSEN_CLIENT_ID_LENGTH}}$`,
      description: 'A client_id of your choice; left out, the server issues one',
    },
    client_secret_sha256: {
      type: 'string', pattern: '^[0-9a-f]{64}$',
      description: 'The SHA-256 (lowercase hex) of an existing secret, to keep it (secret methods only); left out, a secret is issued',
    },
    ...pick(CLIENT_FIELDS, 'input'),
  },
  additionalProperties: false,
};

const clientWire = (extra: Record<string, JsonSchema>, description: string): JsonSchema => ({
  type: 'object',
  description,
  required: [...Object.keys(CLIENT_FIELDS), ...Object.keys(extra)],
  properties: { ...pick(CLIENT_FIELDS, 'wire'), ...extra },
  additionalProperties: false,
});

const SECRET_MEMBERS: Record<string, JsonSchema> = {
  client_secret: { type: 'string', description: 'The new secret, shown this once (m2m_cs_ and 43 base64url characters)' },
  client_secret_expires_at: { const: 0, description: 'RFC 7591 §3.2.1: 0, the secret does not expire' },
};

/** A client as every answer shows it; stored secret digests never leave the server. */
export const CLIENT: JsonSchema = clientWire({}, 'A registered client');

/** A client with a newly issued secret: create, and an update that switches to a secret method. */
export const CLIENT_WITH_SECRET: JsonSchema = clientWire(SECRET_MEMBERS, 'A client with its new secret, shown once');

/** Create and update answer a client, with its secret when one was issued. */
export const CLIENT_MAYBE_WITH_SECRET: JsonSchema = { oneOf: [CLIENT, CLIENT_WITH_SECRET] };

export const CLIENT_SECRET_ROTATED: JsonSchema = clientWire({
  ...SECRET_MEMBERS,
  previous_secret_expires_at: {
    ...nullable(EPOCH_SECONDS), description: 'When the previous secret stops working; null when there was none',
  },
}, 'A client with its new secret, shown once');

export const CLIENT_LIST: JsonSchema = {
  type: 'object',
  required: ['clients', 'next'],
  properties: {
    clients: { type: 'array', items: CLIENT },
    next: { type: ['string', 'null'], description: 'Pass as after for the next page; null on the last page' },
  },
  additionalProperties: false,
};

export const SECRET_ROTATION: JsonSchema = {
  type: 'object',
  properties: {
    grace_period: {
      // The bound is checked by the registry (its words), so it is in the description only.
      type: 'integer', minimum: 0,
      description: `Seconds the previous secret keeps working, at most ${MAX_GRACE_PERIOD} (default M2M_AUTH_SECRET_GRACE_PERIOD); 0 ends it at once`,
    },
  },
  additionalProperties: false,
};

/** The body of an action that takes none: nothing, or {}. */
export const NO_MEMBERS: JsonSchema = { type: 'object', additionalProperties: false };

/** A signing key as the admin API shows it: public fields only. */
export const KEY: JsonSchema = {
  type: 'object',
  required: ['kid', 'alg', 'status', 'created_at', 'activates_at', 'retired_at', 'expires_at', 'revoked_at'],
  properties: {
    kid: { type: 'string' },
    alg: { type: 'string' },
    status: { type: ['string', 'null'], enum: ['pending', 'active', 'retired', 'revoked', null] },
    created_at: nullable(EPOCH_SECONDS),
    activates_at: { ...nullable(EPOCH_SECONDS), description: 'When it starts signing' },
    retired_at: { ...nullable(EPOCH_SECONDS), description: 'When it stopped signing' },
    expires_at: { ...nullable(EPOCH_SECONDS), description: 'When the last token it signed expires' },
    revoked_at: nullable(EPOCH_SECONDS),
  },
  additionalProperties: false,
};

const KEYS: JsonSchema = { type: 'array', items: KEY, description: 'Every signing key, newest first' };

export const KEY_LIST: JsonSchema = { type: 'object', required: ['keys'], properties: { keys: KEYS }, additionalProperties: false };

export const KEY_ROTATION: JsonSchema = {
  type: 'object',
  properties: { now: { type: 'boolean', description: 'true: the new key signs at once and every other key retires (a leaked key)' } },
  additionalProperties: false,
};

export const KEY_ROTATED: JsonSchema = {
  type: 'object', required: ['key', 'keys'], properties: { key: KEY, keys: KEYS }, additionalProperties: false,
};

export const KEY_REVOCATION: JsonSchema = {
  type: 'object',
  properties: { rotate: { type: 'boolean', description: 'true: first a new key that signs at once (needed to revoke the signing key)' } },
  additionalProperties: false,
};

export const KEY_REVOKED: JsonSchema = {
  type: 'object',
  required: ['key', 'replacement', 'keys'],
  properties: { key: KEY, replacement: { oneOf: [KEY, { type: 'null' }] }, keys: KEYS },
  additionalProperties: false,
};

const stringList = (description: string): JsonSchema => ({ type: 'array', description, items: { type: 'string' } });

/**
 * The trusted issuer fields (issue 17), in the order answers show them: the one place a trust
 * field is added, beside its rule in trusts/rules.ts and its wire form in trusts/wire.ts. As for
 * clients, the input schemas check types only; the rules give every other refusal its words.
 */
export const TRUST_FIELDS: Readonly<Record<string, Field>> = {
  name: {
    input: { type: 'string', description: 'What clients name in federated_issuer: 1 to 64 of [a-z0-9-], starting with a letter; cannot change' },
    wire: { type: 'string' },
  },
  kind: {
    input: { type: 'string', enum: [...TRUST_KINDS], description: 'kubernetes, spiffe or oidc' },
    wire: { type: 'string', enum: [...TRUST_KINDS] },
  },
  issuer: {
    input: { type: ['string', 'null'], description: 'kubernetes and oidc: the iss of the platform tokens, an https URL (its OIDC discovery gives the keys unless jwks_uri or jwks is set)' },
    wire: { type: ['string', 'null'] },
  },
  trust_domain: {
    input: { type: ['string', 'null'], description: 'spiffe: the trust domain (prod.example.org)' },
    wire: { type: ['string', 'null'] },
  },
  jwks_uri: {
    input: { type: ['string', 'null'], description: 'An https JWKS URL, or the SPIFFE bundle endpoint; null = OIDC discovery of issuer' },
    wire: { type: ['string', 'null'] },
  },
  jwks: {
    input: { type: ['object', 'null'], description: 'Keys by value (a JWKS file, or a static SPIFFE bundle): public keys only' },
    wire: {
      type: ['object', 'null'],
      required: ['keys'],
      properties: { keys: { type: 'array', items: TRUST_JWK } },
      additionalProperties: false,
    },
  },
  ca_bundle: {
    input: { type: ['string', 'null'], description: 'PEM certificates to trust when fetching keys (an in-cluster API server); null = the system CAs' },
    wire: { type: ['string', 'null'] },
  },
  allowed_private_hosts: {
    input: stringList('Hosts the keys may be fetched from although they resolve to a private, loopback or link-local address'),
    wire: stringList('Hosts allowed a private address'),
  },
  audiences: {
    input: stringList('Audiences accepted besides the issuer and the token endpoint (not for spiffe)'),
    wire: stringList('Extra accepted audiences'),
  },
  max_token_lifetime: {
    input: { type: 'integer', description: 'Longest platform token lifetime accepted, in seconds (60 s to 7 days; default 24 h)' },
    wire: { type: 'integer' },
  },
  single_use_jti: {
    input: { type: ['boolean', 'null'], description: 'Single-use jti: null = the kind\'s default (off for kubernetes and spiffe, on for oidc when the token has a jti)' },
    wire: { type: ['boolean', 'null'] },
  },
  created_at: { wire: EPOCH_SECONDS },
  updated_at: { wire: EPOCH_SECONDS },
};


/** POST /admin/trusted-issuers. */
export const TRUST_CREATE: JsonSchema = {
  type: 'object',
  description: 'A new trusted issuer',
  required: ['name', 'kind'],
  properties: pick(TRUST_FIELDS, 'input'),
  additionalProperties: false,
};

/** PATCH /admin/trusted-issuers/{name}: the fields to change (null clears a nullable one). */
export const TRUST_UPDATE: JsonSchema = {
  type: 'object',
  description: 'Trusted issuer fields to change; fields left out keep their value',
  properties: pick(TRUST_FIELDS, 'input'),
  additionalProperties: false,
};

export const TRUST: JsonSchema = {
  type: 'object',
  description: 'A trusted issuer',
  required: Object.keys(TRUST_FIELDS),
  properties: pick(TRUST_FIELDS, 'wire'),
  additionalProperties: false,
};

export const TRUST_LIST: JsonSchema = {
  type: 'object',
  required: ['trusted_issuers', 'next'],
  properties: {
    trusted_issuers: { type: 'array', items: TRUST },
    next: { type: ['string', 'null'], description: 'Pass as after for the next page; null on the last page' },
  },
  additionalProperties: false,
};

/** Every error of the admin listener. */
export const ADMIN_ERROR: JsonSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', enum: ['invalid_request', 'unauthorized', 'not_found', 'conflict', 'server_error', 'temporarily_unavailable'] },
    message: { type: 'string', description: 'What went wrong, for people; it never holds a secret' },
  },
  additionalProperties: false,
};

/** The schemas the document names under components.schemas (each appears there once, and by $ref elsewhere). */
export const COMPONENTS: Readonly<Record<string, JsonSchema>> = {
  AdminError: ADMIN_ERROR,
  ClientCreate: CLIENT_CREATE,
  ClientUpdate: CLIENT_UPDATE,
  Client: CLIENT,
  ClientWithSecret: CLIENT_WITH_SECRET,
  ClientSecretRotated: CLIENT_SECRET_ROTATED,
  ClientList: CLIENT_LIST,
  PublicJwk: PUBLIC_JWK,
  Key: KEY,
  KeyList: KEY_LIST,
  KeyRotated: KEY_ROTATED,
  KeyRevoked: KEY_REVOKED,
  TrustCreate: TRUST_CREATE,
  TrustUpdate: TRUST_UPDATE,
  Trust: TRUST,
  TrustList: TRUST_LIST,
};
