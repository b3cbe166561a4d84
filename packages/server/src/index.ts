// m2m-auth's public surface: the server factory, configuration, storage interfaces and the error type.
// The storage conformance suite is its own entry point (m2m-auth/storage/conformance) as it needs vitest.

export { createServer, startServer, type M2MAuthServer, type RunningServer, type ServerOptions } from './server.js';
export { loadConfig, configReference, CONFIG_SCHEMA, type Config } from './config/schema.js';
export { openStorage } from './storage/open.js';
export { StorageConflictError, type Storage, type ClientStore, type KeyStore, type RevocationStore, type ReplayStore } from './storage/types.js';
export { type ClientRecord, type SigningKeyRecord, type RevocationRecord } from './ground/records.js';
export { OAuthError, ConfigError, type OAuthErrorCode, type ConfigErrorCode } from './ground/errors.js';
export { EventBus, type EventMap, type EventName } from './observability/events.js';
