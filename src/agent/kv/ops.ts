/**
 * The KV operations, with the semantics of Consul's state store (`agent/consul/state/kvs.go`): each takes a
 * transaction and answers whether it applied. The HTTP `PUT/DELETE /v1/kv/:key` and `/v1/txn` both use them.
 */
import type { KvEntry, KvTx } from './state.ts';

/** The value and flags a write carries. */
export interface KvWrite {
  key: string;
  /** Base64 of the value; null = empty. */
  value: string | null;
  /** Decimal uint64. @default '0' */
  flags?: string;
}

/** A KV error Consul reports as text (HTTP 500; a txn's `Errors[].What`). */
export class KvOpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvOpError';
  }
}

function store(tx: KvTx, w: KvWrite, base: Partial<KvEntry>): void {
  const prev = tx.get(w.key);
  const next: KvEntry = {
    key: w.key,
    value: w.value,
    flags: w.flags ?? '0',
    session: base.session ?? prev?.session ?? '',
    lockIndex: base.lockIndex ?? prev?.lockIndex ?? 0,
    createIndex: prev?.createIndex ?? tx.index,
    modifyIndex: tx.index,
  };
  // An unchanged entry is not rewritten and keeps its ModifyIndex (Consul kvsSetTxn: existing.Equal).
  if (
    prev &&
    prev.value === next.value &&
    prev.flags === next.flags &&
    prev.session === next.session &&
    prev.lockIndex === next.lockIndex
  )
    return;
  tx.put(next);
}

/** Plain set: keeps the key's lock holder (Consul: "preserve the existing session"). Always applies. */
export function kvSet(tx: KvTx, w: KvWrite): true {
  store(tx, w, {});
  return true;
}

/** Check-and-set: `cas` 0 = only if absent, else only if the ModifyIndex equals it. */
export function kvCas(tx: KvTx, w: KvWrite, cas: number): boolean {
  const prev = tx.get(w.key);
  if (cas === 0 ? prev !== undefined : prev === undefined || prev.modifyIndex !== cas) return false;
  store(tx, w, {});
  return true;
}

/**
 * Acquires the key's lock for `session` and writes the value. False when another session holds it.
 * Consul's errors: `missing session`, `invalid session "<id>"`.
 */
export function kvLock(tx: KvTx, w: KvWrite, session: string): boolean {
  if (session === '') throw new KvOpError('missing session');
  if (!tx.session(session)) throw new KvOpError(`invalid session ${JSON.stringify(session)}`);
  const prev = tx.get(w.key);
  let lockIndex = 1;
  if (prev) {
    if (prev.session === session) lockIndex = prev.lockIndex;
    else if (prev.session !== '') return false;
    else lockIndex = prev.lockIndex + 1;
  }
  store(tx, w, { session, lockIndex });
  return true;
}

/** Releases the lock `session` holds and writes the value. False when the key is absent or not held by it. */
export function kvUnlock(tx: KvTx, w: KvWrite, session: string): boolean {
  if (session === '') throw new KvOpError('missing session');
  const prev = tx.get(w.key);
  if (!prev || prev.session !== session) return false;
  store(tx, w, { session: '', lockIndex: prev.lockIndex });
  return true;
}

/** Deletes one key (absent is fine). */
export function kvDelete(tx: KvTx, key: string): true {
  tx.del(key);
  return true;
}

/** Deletes every key under `prefix` (`''` = everything). */
export function kvDeleteTree(tx: KvTx, prefix: string): true {
  tx.delTree(prefix);
  return true;
}

/**
 * Deletes the key if its ModifyIndex equals `cas`. A missing key answers true (Consul kvsDeleteCASTxn:
 * `return entry == nil`); `cas=0` never deletes an existing key.
 */
export function kvDeleteCas(tx: KvTx, key: string, cas: number): boolean {
  const prev = tx.get(key);
  if (!prev) return true;
  if (prev.modifyIndex !== cas) return false;
  tx.del(key);
  return true;
}
