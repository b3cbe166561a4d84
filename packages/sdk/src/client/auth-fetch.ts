// A fetch that sends a Bearer token (RFC 6750 §2.1) from a TokenProvider, and on a 401 asks once
// more with a new token, as the resource server may have stopped accepting the old one.

import type { FetchLike } from '../shared/discovery.js';
import type { TokenProvider } from './token-provider.js';

export type AuthFetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export function createAuthFetch(provider: TokenProvider, fetchImpl: FetchLike = globalThis.fetch): AuthFetch {
  return async (input, init) => {
    const original = new Request(input, init);
    // Kept unread for the retry: a body can be sent only once.
    const spare = original.clone();
    const send = (request: Request, token: string): Promise<Response> => {
      request.headers.set('authorization', `Bearer ${token}`);
      return fetchImpl(request);
    };
    const token = await provider.getToken();
    const res = await send(original, token);
    if (res.status !== 401) {
      await spare.body?.cancel().catch(() => undefined);
      return res;
    }
    await res.body?.cancel().catch(() => undefined);
    provider.invalidate(token);
    return send(spare, await provider.getToken());
  };
}
