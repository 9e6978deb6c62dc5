export {
  KvOpError,
  type KvWrite,
  kvCas,
  kvDelete,
  kvDeleteCas,
  kvDeleteTree,
  kvLock,
  kvSet,
  kvUnlock,
} from './ops.ts';
export {
  type KvEntry,
  KvState,
  type KvStateOptions,
  KvTx,
  type KvWatch,
  MAX_LOCK_DELAY_MS,
  type SessionBehavior,
  type SessionRecord,
  type SessionServiceCheck,
} from './state.ts';
