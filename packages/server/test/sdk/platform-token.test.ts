// Federated client authentication on the calling side (issue 17): createTokenProvider sends the
// platform token as a client assertion (RFC 7521 §4.2), read from a file the platform rewrites
// (re-read when it changes, and after the server refused it) or from a function. The platform
// token never appears in an error.

import { mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createTokenProvider, SdkOptionsError, TokenRequestError } from '@m2m-auth/sdk/client';
import { startLocalIssuer, type LocalIssuer } from './local-issuer.js';

const API = 'https://orders.example.com';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWT_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';

let iss: LocalIssuer;
let dir: string;
let platformKey: CryptoKey;
let n = 0;

/** A projected service-account token as the kubelet writes it (its contents vary in length). */
async function platformToken(sub = 'system:serviceaccount:payments:billing', pad = ''): Promise<string> {
  const t = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub, aud: 'm2m-auth', iat: t, exp: t + 3600, n: ++n, pad })
    .setProtectedHeader({ alg: 'ES256', kid: 'k8s-1' }).setIssuer('https://kubernetes.default.svc').sign(platformKey);
}

/** The kubelet's way: a new file, then an atomic rename over the old path. */
function replaceFile(path: string, token: string): void {
  const tmp = `${path}.${process.hrtime.bigint()}`;
  writeFileSync(tmp, token);
  renameSync(tmp, path);
}

beforeAll(async () => {
  iss = await startLocalIssuer({ audience: API });
  dir = mkdtempSync(join(tmpdir(), 'm2m-auth-sdk-platform-'));
  platformKey = (await generateKeyPair('ES256')).privateKey;
});
afterAll(async () => {
  await iss.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  iss.intercept = undefined;
  iss.requests.length = 0;
});

const assertions = (): (string | null)[] => iss.requests.map((r) => r.form.get('client_assertion'));

describe('a platform token from a file', () => {
  it('sends client_id, the jwt-bearer assertion type and the file\'s token; no secret, no Basic header', async () => {
    const file = join(dir, 'token-1');
    const token = await platformToken();
    writeFileSync(file, `${token}\n`);
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', platformToken: { file } });
    await provider.getToken();
    const form = iss.requests[0]!.form;
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials', client_id: 'cl_billing', client_assertion_type: JWT_BEARER, client_assertion: token,
    });
    expect(iss.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('sends jwt-spiffe for a JWT-SVID', async () => {
    const file = join(dir, 'svid');
    writeFileSync(file, await platformToken('spiffe://prod.example.org/ns/payments/sa/billing'));
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', platformToken: { file }, platformTokenType: 'jwt-spiffe' });
    await provider.getToken();
    expect(iss.requests[0]!.form.get('client_assertion_type')).toBe(JWT_SPIFFE);
  });

  it('reads the file again when the platform replaced it, and not otherwise', async () => {
    const file = join(dir, 'token-2');
    const first = await platformToken();
    writeFileSync(file, first);
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', platformToken: { file } });
    await provider.getToken();
    provider.invalidate();
    await provider.getToken();
    const second = await platformToken(undefined, 'x');
    replaceFile(file, second);
    provider.invalidate();
    await provider.getToken();
    // rewritten in place, same length: the modification time tells (set here, as two writes in
    // one kernel clock tick would share it; a refusal covers that case, tested below)
    const third = await platformToken(undefined, 'y');
    writeFileSync(file, third);
    utimesSync(file, new Date(), new Date(Date.now() + 5_000));
    provider.invalidate();
    await provider.getToken();
    expect(assertions()).toEqual([first, first, second, third]);
  });

  it('after the server refuses the token, reads the file again and asks at once with the new token', async () => {
    const file = join(dir, 'token-3');
    const old = await platformToken();
    writeFileSync(file, old);
    const renewed = await platformToken(undefined, 'renewed');
    // The platform rotates the file just as the server sees the old (now expired) token.
    iss.intercept = (req) => {
      if (req.form.get('client_assertion') !== old) return undefined;
      replaceFile(file, renewed);
      return { status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed.' } };
    };
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', platformToken: { file } });
    await provider.getToken();
    expect(assertions()).toEqual([old, renewed]);
  });

  it('a refusal with an unchanged file is an error (invalid_client, not retried) without the token in it', async () => {
    const file = join(dir, 'token-4');
    const token = await platformToken();
    writeFileSync(file, token);
    iss.intercept = () => ({ status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed.' } });
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', platformToken: { file } });
    const err = await provider.getToken().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRequestError);
    expect((err as TokenRequestError).error).toBe('invalid_client');
    expect(iss.requests).toHaveLength(1);
    const text = `${(err as Error).message} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split('.')[2]!);
  });

  it('a missing, empty or non-JWT file is platform_token_unavailable (retried), naming the file, never its contents', async () => {
    const file = join(dir, 'token-5');
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', platformToken: { file }, retry: { attempts: 1 } });
    let err = (await provider.getToken().catch((e: unknown) => e)) as TokenRequestError;
    expect(err.error).toBe('platform_token_unavailable');
    expect(err.transient).toBe(true);
    expect(err.message).toContain(file);
    writeFileSync(file, '');
    err = (await provider.getToken().catch((e: unknown) => e)) as TokenRequestError;
    expect(err.error_description).toMatch(/is empty/);
    writeFileSync(file, 'client-secret-that-is-not-a-jwt');
    err = (await provider.getToken().catch((e: unknown) => e)) as TokenRequestError;
    expect(err.error_description).toMatch(/does not hold a compact JWT/);
    expect(`${err.message} ${JSON.stringify(err)}`).not.toContain('client-secret-that-is-not-a-jwt');
    expect(iss.requests).toHaveLength(0);
    // the platform writes it at last: the provider picks it up
    const token = await platformToken();
    writeFileSync(file, token);
    await provider.getToken();
    expect(assertions()).toEqual([token]);
  });
});

describe('a platform token from a function', () => {
  it('calls it for each token request (a CI job\'s OIDC token)', async () => {
    const tokens = [await platformToken('repo:acme/billing:environment:production'), await platformToken('repo:acme/billing:environment:production')];
    let calls = 0;
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_ci', platformToken: async () => tokens[calls++]! });
    await provider.getToken();
    provider.invalidate();
    await provider.getToken();
    expect(assertions()).toEqual(tokens);
  });

  it('a failing function is platform_token_unavailable, retried, with its error as the cause', async () => {
    let calls = 0;
    const token = await platformToken();
    const provider = createTokenProvider({
      issuer: iss.issuer, clientId: 'cl_ci', retry: { attempts: 3, baseDelayMs: 1 },
      platformToken: () => {
        if (++calls < 3) throw new Error('metadata server not ready');
        return token;
      },
    });
    await provider.getToken();
    expect(calls).toBe(3);
    expect(assertions()).toEqual([token]);
  });

  it('options: one way to authenticate, and a usable source', () => {
    expect(() => createTokenProvider({ issuer: iss.issuer, clientId: 'c', clientSecret: 's', platformToken: { file: '/x' } } as never)).toThrow(SdkOptionsError);
    expect(() => createTokenProvider({ issuer: iss.issuer, clientId: 'c', platformToken: { file: '' } })).toThrow(/platformToken/);
    expect(() => createTokenProvider({ issuer: iss.issuer, clientId: 'c', platformToken: { file: '/x' }, platformTokenType: 'saml' as 'jwt-bearer' })).toThrow(/platformTokenType/);
  });
});
