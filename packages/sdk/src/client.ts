// m2m-auth/client: client credentials access tokens (RFC 6749 §4.4) for services that call APIs.

export {
  createTokenProvider,
  type TokenProvider,
  type TokenProviderOptions,
  type ClientSecretOptions,
  type PrivateKeyJwtOptions,
  type PlatformTokenOptions,
  type TlsClientAuthOptions,
} from './client/token-provider.js';
export type { DPoPOptions, DPoPProver, DPoPKey } from './client/dpop.js';
export type { PlatformTokenSource, PlatformAssertionType } from './client/platform-token.js';
export { DPOP_ALGORITHMS, type DPoPAlgorithm } from './shared/dpop.js';
export { createAuthFetch, type AuthFetch } from './client/auth-fetch.js';
export { TokenRequestError } from './client/errors.js';
export { ASSERTION_ALGORITHMS, type AssertionAlgorithm, type PrivateKeyInput } from './client/client-auth.js';
export type { RetryOptions } from './client/retry.js';
export { DiscoveryError, SdkOptionsError, type DiscoveryErrorCode } from './shared/errors.js';
export type { FetchLike } from './shared/discovery.js';
