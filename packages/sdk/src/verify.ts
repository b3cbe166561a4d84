// m2m-auth/verify: validating RFC 9068 access tokens at an API, and Fastify / Express adapters
// that answer per RFC 6750.

export {
  createVerifier,
  describeVerificationError,
  DEFAULT_ALGORITHMS,
  VERIFIER_ALGORITHMS,
  type AccessTokenClaims,
  type Confirmation,
  type TokenPresentation,
  type Verifier,
  type VerifierAlgorithm,
  type VerifierOptions,
} from './verify/verifier.js';
export type { IntrospectionOptions } from './verify/introspection.js';
export { DEFAULT_DPOP_ALGORITHMS, type DPoPVerifierOptions } from './verify/dpop-proof.js';
export type { RequestBindingOptions } from './verify/request-binding.js';
export { DPOP_ALGORITHMS, type DPoPAlgorithm } from './shared/dpop.js';
export { TokenVerificationError, type TokenVerificationErrorCode } from './verify/errors.js';
export type { BearerAuthOptions } from './verify/bearer.js';
export { fastifyBearerAuth, type FastifyBearerAuthOptions } from './verify/fastify.js';
export { expressBearerAuth, type ExpressBearerAuthOptions } from './verify/express.js';
export { requireScope, type ScopeGuard } from './verify/require-scope.js';
export { DiscoveryError, SdkOptionsError } from './shared/errors.js';
