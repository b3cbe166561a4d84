// The PostgreSQL storage backend's public surface.

export {
  MIGRATION_TIMEOUT_MS,
  openPostgresStorage,
  POSTGRES_DEFAULTS,
  postgresClientConfig,
  PostgresStorage,
  type PostgresStorageOptions,
} from './storage.js';
export { PostgresChangeLog } from './changes.js';
export { applyMigrations, MIGRATION_LOCK_ID, MIGRATIONS, type Migration } from './migrations.js';
export {
  PostgresChangeFeed,
  type ChangeFeed,
  type ChangeFeedHooks,
  type ChangeHandler,
  type PostgresChangeFeedOptions,
} from './notify.js';
