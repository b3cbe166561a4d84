// The SQLite storage backend's public surface.

export { BUSY_TIMEOUT_MS, openSqliteDatabase, openSqliteStorage, SqliteStorage } from './storage.js';
export { applyMigrations, MIGRATIONS, type Migration } from './migrations.js';
