export { createEtcdStore, type EtcdHealth, type EtcdStore, type EtcdStoreOptions } from './etcd.ts';
export { createMemoryStore } from './memory.ts';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite.ts';
export {
  type ClusterTable,
  isSharedStore,
  type SharedStore,
  type SharedStoreOp,
  type Store,
  type StoreChange,
  type StoreEvent,
  type StoreOp,
  type StoreRow,
  type StoreSnapshot,
  type StoreTable,
  type StoreWatch,
} from './store.ts';
