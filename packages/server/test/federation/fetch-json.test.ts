// Which URLs and addresses a trusted issuer's keys may be fetched from (src/federation/fetch-json.ts).
// The connections themselves are tested against real HTTPS issuers in federated-jwt.test.ts.

import { describe, expect, it } from 'vitest';
import { fetchJson, isPrivateAddress, refusedUrl, type FetchPolicy } from '../../src/federation/fetch-json.js';

const policy = (over: Partial<FetchPolicy> = {}): FetchPolicy => ({
  allowedPrivateHosts: [], allowHttpLoopback: false, timeoutMs: 1000, maxBytes: 1024, ...over,
});

describe('isPrivateAddress', () => {
  it('knows the private, loopback, link-local and reserved ranges, IPv4-mapped too', () => {
    for (const a of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '127.0.0.1', '169.254.169.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
      expect([a, isPrivateAddress(a)]).toEqual([a, true]);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '140.82.112.3', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect([a, isPrivateAddress(a)]).toEqual([a, false]);
    }
  });
});

describe('refusedUrl', () => {
  it('wants https, allows http only to a loopback host with the unsafe switch', () => {
    expect(refusedUrl(new URL('http://issuer.example.com/jwks'), policy())).toBe('not an https URL');
    expect(refusedUrl(new URL('http://issuer.example.com/jwks'), policy({ allowHttpLoopback: true }))).toBe('not an https URL');
    expect(refusedUrl(new URL('http://127.0.0.1:8080/jwks'), policy({ allowHttpLoopback: true, allowedPrivateHosts: ['127.0.0.1'] }))).toBeUndefined();
    expect(refusedUrl(new URL('http://localhost:8080/jwks'), policy({ allowHttpLoopback: true }))).toBeUndefined();
    expect(refusedUrl(new URL('file:///etc/passwd'), policy())).toBe('not an https URL');
    expect(refusedUrl(new URL('https://issuer.example.com/jwks'), policy())).toBeUndefined();
  });

  it('refuses an IP literal in a private range unless the trust names it, and credentials in the URL', () => {
    expect(refusedUrl(new URL('https://169.254.169.254/latest'), policy())).toBe('169.254.169.254 is a private, loopback or link-local address the trust does not allow');
    expect(refusedUrl(new URL('https://[::1]/jwks'), policy())).toBe('::1 is a private, loopback or link-local address the trust does not allow');
    expect(refusedUrl(new URL('https://10.96.0.1/openid/v1/jwks'), policy({ allowedPrivateHosts: ['10.96.0.1'] }))).toBeUndefined();
    expect(refusedUrl(new URL('https://user:pw@issuer.example.com/jwks'), policy())).toBe('the URL carries credentials');
  });

  it('fetchJson says why before connecting', async () => {
    await expect(fetchJson('not a url', policy())).rejects.toThrow('not a URL');
    await expect(fetchJson('https://10.0.0.1/jwks', policy())).rejects.toThrow('10.0.0.1 is a private, loopback or link-local address the trust does not allow');
  });
});
