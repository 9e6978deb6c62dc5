export { createMemoryStore } from './memory.ts';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite.ts';
export type { Store, StoreOp, StoreSnapshot, StoreTable } from './store.ts';
