// A fetch that sends the token of a TokenProvider: `Authorization: Bearer` (RFC 6750 §2.1), or for
// a DPoP provider `Authorization: DPoP` with a fresh proof bound to the token (RFC 9449 §7.1). On
// a 401 it asks once more with a new token, as the resource server may have stopped accepting the
// old one; a DPoP resource's 401 use_dpop_nonce (§9) is answered first with its nonce.

import type { FetchLike } from '../shared/discovery.js';
import { DPOP_NONCE_HEADER, USE_DPOP_NONCE } from '../shared/dpop.js';
import type { TokenProvider } from './token-provider.js';

export type AuthFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A 401 whose DPoP challenge says error="use_dpop_nonce", with the nonce to use. */
function wantsNonce(res: Response): boolean {
  if (!res.headers.has(DPOP_NONCE_HEADER)) return false;
  const challenge = res.headers.get('www-authenticate') ?? '';
  return /\bDPoP\b/i.test(challenge) && new RegExp(`error="?${USE_DPOP_NONCE}"?`).test(challenge);
}

/**
 * The request as (url, init): a fetch of another copy of undici (the caller's, bound to a
 * dispatcher with a client certificate) does not recognise this runtime's Request objects.
 */
function initOf(request: Request): RequestInit {
  const init: RequestInit & { duplex?: 'half' } = {
    method: request.method,
    headers: [...request.headers],
    signal: request.signal,
    redirect: request.redirect,
  };
  if (request.body !== null) {
    init.body = request.body;
    init.duplex = 'half';
  }
  return init;
}

async function drop(res: Response | Request): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

export function createAuthFetch(provider: TokenProvider, fetchImpl: FetchLike = globalThis.fetch): AuthFetch {
  const { dpop } = provider;
  return async (input, init) => {
    const original = new Request(input, init);
    // Kept unread for the retries: a body can be sent only once.
    const spares = [original.clone(), ...(dpop === undefined ? [] : [original.clone()])];
    const send = async (request: Request, token: string): Promise<Response> => {
      if (dpop === undefined) {
        request.headers.set('authorization', `Bearer ${token}`);
      } else {
        request.headers.set('authorization', `DPoP ${token}`);
        request.headers.set('dpop', await dpop.proof(request.method, request.url, token));
      }
      const res = await fetchImpl(request.url, initOf(request));
      dpop?.rememberNonce(request.url, res.headers);
      return res;
    };
    const finish = async (res: Response): Promise<Response> => {
      for (const spare of spares.splice(0)) await drop(spare);
      return res;
    };
    let token = await provider.getToken();
    let res = await send(original, token);
    if (res.status !== 401) return finish(res);
    if (dpop !== undefined && wantsNonce(res)) {
      await drop(res);
      res = await send(spares.shift()!, token);
      if (res.status !== 401) return finish(res);
    }
    await drop(res);
    provider.invalidate(token);
    token = await provider.getToken();
    return finish(await send(spares.shift()!, token));
  };
}
