// Federated client authentication (RFC 7521 §4.2, RFC 7523 §2.2; draft-ietf-oauth-spiffe-client-auth
// for JWT-SVIDs): the client assertion is a token the workload's platform issued, read from a file
// the platform keeps fresh or from a function of the caller's.

import { readFile, stat } from 'node:fs/promises';
import { SdkOptionsError } from '../shared/errors.js';
import type { Authenticate } from './client-auth.js';
import { CLIENT_ASSERTION_TYPE } from './client-auth.js';
import { TokenRequestError } from './errors.js';

export const SPIFFE_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';

/**
 * Where the platform token comes from: `{ file }`, a file the platform rewrites (a Kubernetes
 * projected service-account token, a JWT-SVID written by spiffe-helper), or a function called for
 * every token request (a CI job's OIDC token, a cloud metadata endpoint).
 */
export type PlatformTokenSource = { file: string } | (() => string | Promise<string>);

/** `jwt-spiffe` when the token is a SPIFFE JWT-SVID; `jwt-bearer` (RFC 7523) otherwise. */
export type PlatformAssertionType = 'jwt-bearer' | 'jwt-spiffe';

/** Longer files are refused: a JWT of a platform is a few kilobytes. */
const MAX_TOKEN_BYTES = 64 * 1024;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface PlatformAuthentication {
  authenticate: Authenticate;
  /**
   * The server refused the last token: the next request reads the source again. Resolves true
   * when what it reads now differs from what was refused, so asking again at once is worth it.
   */
  refused(): Promise<boolean>;
}

function unavailable(description: string, cause?: unknown): TokenRequestError {
  return new TokenRequestError('platform_token_unavailable', { error_description: description, cause });
}

/** A token's shape only; the value itself never goes into an error. */
function checked(token: unknown, where: string): string {
  if (typeof token !== 'string') throw unavailable(`${where} did not give a string`);
  const t = token.trim();
  if (t === '') throw unavailable(`${where} is empty`);
  if (!JWS_COMPACT.test(t)) throw unavailable(`${where} does not hold a compact JWT`);
  return t;
}

export function platformTokenAuthentication(
  clientId: string,
  source: PlatformTokenSource,
  type: PlatformAssertionType | undefined,
): PlatformAuthentication {
  const assertionType = type === undefined || type === 'jwt-bearer' ? CLIENT_ASSERTION_TYPE : type === 'jwt-spiffe' ? SPIFFE_ASSERTION_TYPE : undefined;
  if (assertionType === undefined) throw new SdkOptionsError('platformTokenType must be jwt-bearer or jwt-spiffe');
  let read: (force: boolean) => Promise<string>;
  if (typeof source === 'function') {
    read = async () => {
      let value: unknown;
      try {
        value = await source();
      } catch (err) {
        throw unavailable('the platform token function failed', err);
      }
      return checked(value, 'the platform token function');
    };
  } else if (typeof source === 'object' && source !== null && typeof source.file === 'string' && source.file !== '') {
    const path = source.file;
    let current: { token: string; stamp: string } | undefined;
    read = async (force) => {
      // A cheap stat before each request: the platform replaces the file (Kubernetes swaps a
      // symlink, so the inode changes; spiffe-helper rewrites it, so mtime and size change).
      let stamp: string;
      try {
        const s = await stat(path);
        stamp = `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
        if (s.size > MAX_TOKEN_BYTES) throw unavailable(`the platform token file ${path} is larger than ${MAX_TOKEN_BYTES} bytes`);
      } catch (err) {
        if (err instanceof TokenRequestError) throw err;
        throw unavailable(`cannot read the platform token file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
      }
      if (!force && current !== undefined && current.stamp === stamp) return current.token;
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw unavailable(`cannot read the platform token file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
      }
      current = { token: checked(text, `the platform token file ${path}`), stamp };
      return current.token;
    };
  } else {
    throw new SdkOptionsError('platformToken must be { file: path } or a function returning the token');
  }

  let last: string | undefined;
  let stale = false;
  return {
    async authenticate() {
      const force = stale;
      stale = false;
      last = await read(force);
      return {
        headers: {},
        // client_id is sent although RFC 7521 §4.2 makes it optional: the server needs it to pick
        // the federated client before it can know which issuer's keys check the assertion.
        form: [['client_id', clientId], ['client_assertion_type', assertionType], ['client_assertion', last]],
      };
    },
    async refused() {
      const refusedToken = last;
      stale = true;
      try {
        const now = await read(true);
        stale = false;
        return now !== refusedToken;
      } catch {
        return false;
      }
    },
  };
}
