export { type DataDir, LOCK_FILE, openDataDir } from './datadir.ts';
export { createEtcdStore, type EtcdHealth, type EtcdStore, type EtcdStoreOptions } from './etcd.ts';
export { KEY_SCHEMA, storeKey } from './keys.ts';
export { createMemoryStore } from './memory.ts';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite.ts';
export {
  type ClusterTable,
  isSharedStore,
  type LoadOptions,
  type SharedStore,
  type SharedStoreOp,
  STORE_TABLES,
  type Store,
  type StoreChange,
  type StoreEvent,
  type StoreGuard,
  type StoreOp,
  type StoreRow,
  type StoreSnapshot,
  type StoreSpace,
  type StoreTable,
  type StoreWatch,
  spaceOf,
} from './store.ts';
