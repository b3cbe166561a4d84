// The per-connection fast paths, in one place, each wrapping a plain step (./steps.ts): a client
// sends the same body and the same Authorization header on every request of a keep-alive
// connection, so what the last request of a connection parsed, proved and was granted is kept
// with the connection and handed out again when the next request is the same. Nothing here
// changes an answer; each memo counts only while what it was computed from is unchanged.
//
// - Form: the last body (short, with no credential or token in it) and its parse; a body equal to
//   it, compared in constant time (a new body may carry a secret), gets the same, unmodified params.
// - Basic: the last client_secret_basic header and the client it proved. The next equal header
//   (constant time) skips decoding and hashing; it counts only while the registry still hands out
//   the very record the secret was checked against (the registry replaces a record on every
//   change: rotation, disabling, deletion, kill switch) and the secret that matched has not
//   expired; the throttle and the staleness bound apply as on the full path. Kept per connection,
//   never in a table looked up by the header: a lookup by secret would not take constant time.
// - Grant: the grant's answer for the last params and client record, with the claims JSON its
//   tokens share, written once per connection instead of once per token. The same params object
//   (a body the form memo kept), or params equal to the last ones but for the credentials (a body
//   with a new client assertion or platform token each time, which the form memo does not keep).

import { ownCopy, sameBytes } from '../ground/bytes.js';
import type { ClientRecord } from '../ground/records.js';
import type { AuthenticatedClient, ClientAuthentication } from './client-auth/authenticate.js';
import { param, parseForm, type FormParams } from './request/form.js';
import { checkFormType } from './request/parse.js';
import type { OAuthRequest } from './request/context.js';
import type { Steps } from './steps.js';
import type { Grant } from './token/grants/grant.js';
import type { Granted } from './token/granted.js';

/** Longest body remembered: a token request is a few hundred bytes; a connection holds no more. */
const MAX_REMEMBERED_BODY = 1024;
/** Longest Authorization header remembered; ours are about 100 characters. */
const MAX_REMEMBERED_HEADER = 512;
/** Parameters that carry a credential or a token: a body with one is not kept beyond its request. */
const CREDENTIAL_PARAMS = ['client_secret', 'client_assertion', 'token'] as const;
const CREDENTIALS: ReadonlySet<string> = new Set(CREDENTIAL_PARAMS);

export interface ConnectionMemosOptions {
  steps: Steps;
  authentication: ClientAuthentication;
  now?: () => number;
}

/** The steps of each connection: the plain ones wrapped with what the connection remembers. */
export class ConnectionMemos {
  readonly #o: Required<ConnectionMemosOptions>;
  readonly #memos = new WeakMap<object, ConnectionMemo>();

  constructor(options: ConnectionMemosOptions) {
    this.#o = { now: Date.now, ...options };
  }

  /**
   * The steps for a request on `connection` (one object per client connection: the socket for
   * HTTP/1.1, the session for HTTP/2); the plain steps when there is none.
   */
  for(connection: object | undefined): Steps {
    if (connection === undefined) return this.#o.steps;
    let memo = this.#memos.get(connection);
    if (memo === undefined) {
      memo = new ConnectionMemo(this.#o.steps, this.#o.authentication, this.#o.now);
      this.#memos.set(connection, memo);
    }
    return memo;
  }
}

/** True when `a` and `b` hold the same parameters with the same values, credentials aside. */
function sameButCredentials(a: FormParams, b: FormParams): boolean {
  let compared = 0;
  for (const [name, values] of a) {
    if (CREDENTIALS.has(name)) continue;
    const others = b.get(name);
    if (others === undefined || others.length !== values.length) return false;
    for (let i = 0; i < values.length; i++) if (values[i] !== others[i]) return false;
    compared++;
  }
  let expected = 0;
  for (const name of b.keys()) if (!CREDENTIALS.has(name)) expected++;
  return compared === expected;
}

class ConnectionMemo implements Steps {
  readonly #plain: Steps;
  readonly #auth: ClientAuthentication;
  readonly #now: () => number;
  /** Form: the last body kept (its own copy) and its parse (read-only from then on). */
  #body: Buffer | undefined;
  #params: FormParams | undefined;
  /** Basic: the header as UTF-8 bytes, the client it proved, and the expiry of the secret that matched (null = none). */
  #header: Buffer | undefined;
  #client: ClientRecord | undefined;
  #expiresAt: number | null = null;
  /** Grant: the params object the last answer was for, and the answer. */
  #grantParams: FormParams | undefined;
  #granted: Granted | undefined;

  constructor(plain: Steps, auth: ClientAuthentication, now: () => number) {
    this.#plain = plain;
    this.#auth = auth;
    this.#now = now;
  }

  parse(req: OAuthRequest): FormParams {
    checkFormType(req.contentType);
    const body = req.body;
    if (body === undefined) return parseForm('');
    const last = this.#body;
    if (last !== undefined && sameBytes(last, body)) return this.#params!;
    const params = parseForm(body);
    if (body.length <= MAX_REMEMBERED_BODY && !CREDENTIAL_PARAMS.some((name) => params.has(name))) {
      this.#body = ownCopy(body);
      this.#params = params;
    } else if (last !== undefined) {
      this.#body = undefined;
      this.#params = undefined;
    }
    return params;
  }

  authenticate(req: OAuthRequest, params: FormParams): Promise<AuthenticatedClient> {
    const authorization = req.authorization;
    if (authorization === undefined || authorization.length === 0) return this.#plain.authenticate(req, params);
    const remembered = this.#client;
    if (
      remembered !== undefined
      // With a second method in the body, the plain chain answers invalid_request.
      && !params.has('client_secret') && !params.has('client_assertion')
      && (!params.has('client_id') || param(params, 'client_id') === remembered.clientId)
      && authorization.length <= MAX_REMEMBERED_HEADER && sameBytes(Buffer.from(authorization, 'utf8'), this.#header!)
    ) {
      return this.#basicAgain(remembered, authorization, req.ip);
    }
    return this.#authenticate(req, params);
  }

  async #authenticate(req: OAuthRequest, params: FormParams): Promise<AuthenticatedClient> {
    const authenticated = await this.#plain.authenticate(req, params);
    if (authenticated.method === 'client_secret_basic') this.#rememberBasic(req.authorization!, authenticated);
    return authenticated;
  }

  /** The remembered header again: the same client, unless its record changed or its secret expired. */
  async #basicAgain(remembered: ClientRecord, authorization: string, ip: string): Promise<AuthenticatedClient> {
    try {
      const wait = this.#auth.throttled(remembered.clientId, ip);
      if (wait) await wait;
      const client = await this.#auth.lookup(remembered.clientId);
      if (client === remembered && (this.#expiresAt === null || this.#expiresAt > this.#now())) {
        return { client, method: 'client_secret_basic', secret: undefined };
      }
      // The record changed or the secret expired: check the same credentials against what the
      // registry holds now (the throttle and the lookup above were for this very client_id).
      this.#client = undefined;
      this.#header = undefined;
      const checked = this.#auth.basicAgainst(client, authorization);
      this.#rememberBasic(authorization, checked);
      return checked;
    } catch (err) {
      const counted = this.#auth.counted(err, ip);
      if (counted) await counted;
      throw err;
    }
  }

  /** Remembers what this connection proved with a short Basic header (a longer one is checked every time). */
  #rememberBasic(authorization: string, checked: AuthenticatedClient): void {
    if (authorization.length > MAX_REMEMBERED_HEADER || checked.secret === undefined) return;
    this.#header = ownCopy(authorization);
    this.#client = checked.client;
    this.#expiresAt = checked.secret.expiresAt;
  }

  grant(grant: Grant, client: ClientRecord, params: FormParams): Granted {
    const last = this.#granted;
    // The same params object means the same body, so the same grant_type and the same grant.
    if (last !== undefined && last.client === client && (params === this.#grantParams || sameButCredentials(params, this.#grantParams!))) return last;
    const granted = this.#plain.grant(grant, client, params);
    this.#grantParams = params;
    this.#granted = granted;
    return granted;
  }
}
