/** `/v1/kv/*` (Consul docs, KV store HTTP API; docs/api/kv.md): Consul's key/value store. */
import type { Indexed, QueryOptions, Transport } from './transport.ts';

/** A KV entry as the agent returns it; `Value` is standard base64 (`null` = empty). */
export interface KvPair {
  LockIndex: number;
  Key: string;
  Flags: number;
  Value: string | null;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Options of {@link KvApi.put}. */
export interface KvPutOptions {
  flags?: number;
  /** Write only if the key's ModifyIndex is this (0 = only if absent). */
  cas?: number;
  /** Take the key's lock for this session. */
  acquire?: string;
  /** Give the key's lock back for this session. */
  release?: string;
}

/** The KV area of the typed client. */
export interface KvApi {
  /** One key (or with `recurse` every key under the prefix); `value` is undefined when there is none (404). */
  get(key: string, q?: QueryOptions & { recurse?: boolean }): Promise<Indexed<KvPair[] | undefined>>;
  /** Key names under a prefix, cut after `separator`. */
  keys(prefix: string, q?: QueryOptions & { separator?: string }): Promise<Indexed<string[]>>;
  /** Writes the raw value; false when a cas/acquire/release condition failed. */
  put(key: string, value: Uint8Array | string, options?: KvPutOptions): Promise<boolean>;
  /** Deletes a key (`recurse`: the prefix); false when `cas` did not match. */
  delete(key: string, options?: { recurse?: boolean; cas?: number }): Promise<boolean>;
}

/** A KV key in a path: each `/`-separated part escaped, the slashes kept. */
const keyPath = (key: string) => `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;

/**
 * Builds the KV area over a transport.
 *
 * @example
 * const consul = createConsulClient();
 * await consul.kv.put('app/config', 'x=1', { cas: 0 });
 * const { value } = await consul.kv.get('app/config');
 */
export function kvApi(t: Transport): KvApi {
  return {
    async get(key, q = {}) {
      const r = await t.read<KvPair[] | string>(keyPath(key), q, { recurse: q.recurse }, [404]);
      return { ...r, value: Array.isArray(r.value) ? r.value : undefined };
    },
    async keys(prefix, q = {}) {
      const r = await t.read<string[] | string>(
        keyPath(prefix),
        q,
        { keys: true, separator: q.separator },
        [404],
      );
      return { ...r, value: Array.isArray(r.value) ? r.value : [] };
    },
    async put(key, value, o = {}) {
      const r = await t.call<boolean>(keyPath(key), {
        method: 'PUT',
        rawBody: typeof value === 'string' ? Buffer.from(value) : value,
        query: { flags: o.flags, cas: o.cas, acquire: o.acquire, release: o.release },
      });
      return r.value === true;
    },
    async delete(key, o = {}) {
      const r = await t.call<boolean>(keyPath(key), {
        method: 'DELETE',
        query: { recurse: o.recurse, cas: o.cas },
      });
      return r.value === true;
    },
  };
}
