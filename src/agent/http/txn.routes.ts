/**
 * `PUT /v1/txn` (developer.hashicorp.com/consul/api-docs/txn): up to 128 KV operations applied atomically.
 * Every operation runs; if any fails, none applies and the answer is 409 with each failure's
 * `{OpIndex, What}` (Consul `txnDispatch` and its error texts). Results carry entries without their value,
 * except for `get` and `get-tree`.
 */

import type { Authorizer } from '../acl/index.ts';
import {
  type KvEntry,
  KvOpError,
  type KvTx,
  type KvWrite,
  kvCas,
  kvDelete,
  kvDeleteCas,
  kvDeleteTree,
  kvLock,
  kvSet,
  kvUnlock,
} from '../kv/index.ts';
import { authz, type Route } from './context.ts';
import { decodeBody, txnSchema } from './decode.ts';
import { HttpError } from './errors.ts';
import { KV_MAX_VALUE_BYTES, renderEntry, requireKeyWritePrefix } from './kv.routes.ts';
import { checkDatacenter, type QueryParams } from './query.ts';
import { sendJson } from './respond.ts';

/** Consul's maxTxnOps. */
export const TXN_MAX_OPS = 128;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

interface TxnOp {
  verb: string;
  write: KvWrite;
  index: number;
  session: string;
}

/**
 * A result entry, rendered once the transaction committed: on a shared store the entries a transaction
 * wrote get their ModifyIndex (the etcd revision) only then.
 */
type TxnResult = { entry: KvEntry; withValue: boolean };
interface TxnErrorItem {
  OpIndex: number;
  What: string;
}

class TxnAborted extends Error {
  readonly errors: TxnErrorItem[];
  constructor(errors: TxnErrorItem[]) {
    super('transaction rolled back');
    this.errors = errors;
  }
}

const READS = new Set(['get', 'get-tree', 'check-index', 'check-session', 'check-not-exists']);

/**
 * Consul's vetTxnOp: reads need key:read, writes key:write (delete-tree: on everything under the prefix).
 * A refusal is that operation's error; the transaction then rolls back with 409, as any failed operation.
 */
function checkOp(a: Authorizer, tx: KvTx, op: TxnOp): void {
  const key = op.write.key;
  if (op.verb === 'delete-tree')
    requireKeyWritePrefix(
      a,
      key,
      tx.list(key).map((e) => e.key),
    );
  else if (op.verb !== 'get-tree') a.require('key', key, READS.has(op.verb) ? 'read' : 'write');
}

/** Runs one operation; returns its results or the error text Consul gives. */
function runOp(tx: KvTx, op: TxnOp, a: Authorizer): TxnResult[] {
  const key = op.write.key;
  const q = JSON.stringify(key);
  const written = () => {
    const e = tx.get(key);
    return e ? [{ entry: e, withValue: false }] : [];
  };
  const fail = (ok: boolean, what: string) => {
    if (!ok) throw new KvOpError(what);
    return written();
  };
  switch (op.verb) {
    case 'set':
      kvSet(tx, op.write);
      return written();
    case 'cas':
      return fail(kvCas(tx, op.write, op.index), `failed to set key ${q}, index is stale`);
    case 'lock':
      return fail(kvLock(tx, op.write, op.session), `failed to lock key ${q}, lock is already held`);
    case 'unlock':
      return fail(
        kvUnlock(tx, op.write, op.session),
        `failed to unlock key ${q}, lock isn't held, or is held by another session`,
      );
    case 'delete':
      kvDelete(tx, key);
      return [];
    case 'delete-tree':
      kvDeleteTree(tx, key);
      return [];
    case 'delete-cas':
      if (!kvDeleteCas(tx, key, op.index)) throw new KvOpError(`failed to delete key ${q}, index is stale`);
      return [];
    case 'get': {
      const e = tx.get(key);
      if (!e) throw new KvOpError(`key ${q} doesn't exist`);
      return [{ entry: e, withValue: true }];
    }
    case 'get-tree':
      // Consul filters a tree read's results to the keys the token may read
      return tx
        .list(key)
        .filter((e: KvEntry) => a.allows('key', e.key, 'read'))
        .map((e: KvEntry) => ({ entry: e, withValue: true }));
    case 'check-index': {
      const e = tx.get(key);
      if (!e) throw new KvOpError(`failed to check index, key ${q} doesn't exist`);
      if (e.modifyIndex !== op.index)
        throw new KvOpError(
          `failed index check for key ${q}, current modify index ${e.modifyIndex} != ${op.index}`,
        );
      return written();
    }
    case 'check-session': {
      const e = tx.get(key);
      if (!e) throw new KvOpError(`failed to check session, key ${q} doesn't exist`);
      if (e.session !== op.session)
        throw new KvOpError(
          `failed to check session, key ${q} is not locked by session ${JSON.stringify(op.session)}`,
        );
      return written();
    }
    case 'check-not-exists':
      if (tx.get(key)) throw new KvOpError(`key ${q} exists`);
      return [];
    default:
      throw new KvOpError(`unknown KV verb ${JSON.stringify(op.verb)}`);
  }
}

/** The txn route table. */
export const txnRoutes: Route[] = [
  {
    path: '/v1/txn',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      checkDatacenter(req.query as QueryParams, ctx.config.datacenter);
      // Consul counts before decoding the operations: too many is a 413 with this text.
      const raw = decodeBody(req.body as Buffer | undefined, txnSchema);
      if (raw.length > TXN_MAX_OPS)
        throw new HttpError(413, `Transaction contains too many operations (${raw.length} > ${TXN_MAX_OPS})`);
      const ops: TxnOp[] = raw.map((o, i) => {
        if (!o.KV)
          throw new HttpError(
            400,
            `Failed to parse body: operation ${i}: Phare's /v1/txn supports KV operations only`,
          );
        const value = o.KV.Value ?? null;
        if (value !== null && !BASE64.test(value))
          throw new HttpError(400, `Failed to parse body: operation ${i}: KV.Value is not standard base64`);
        const size = value === null ? 0 : Buffer.byteLength(value, 'base64');
        if (size > KV_MAX_VALUE_BYTES)
          throw new HttpError(
            413,
            `Value for key ${JSON.stringify(o.KV.Key ?? '')} is too large (${size} > ${KV_MAX_VALUE_BYTES} bytes)`,
          );
        return {
          verb: o.KV.Verb,
          write: {
            key: o.KV.Key ?? '',
            value: value === '' ? null : value,
            flags: BigInt(o.KV.Flags ?? 0).toString(),
          },
          index: o.KV.Index ?? 0,
          session: o.KV.Session ?? '',
        };
      });
      const a = authz(req, ctx);
      try {
        const results = await ctx.kv.write((tx) => {
          const out: TxnResult[] = [];
          const errors: TxnErrorItem[] = [];
          ops.forEach((op, i) => {
            try {
              checkOp(a, tx, op);
              out.push(...runOp(tx, op, a));
            } catch (err) {
              if ((err as { code?: string }).code === 'PHARE_ERR_PERMISSION_DENIED') {
                errors.push({ OpIndex: i, What: (err as Error).message });
                return;
              }
              if (!(err instanceof KvOpError)) throw err;
              errors.push({ OpIndex: i, What: err.message });
            }
          });
          if (errors.length > 0) throw new TxnAborted(errors);
          return out;
        });
        sendJson(reply, {
          Results: results.map((r) => ({ KV: renderEntry(r.entry, r.withValue) })),
          Errors: null,
        });
      } catch (err) {
        if (err instanceof TxnAborted) return sendJson(reply, { Results: null, Errors: err.errors }, 409);
        throw err;
      }
    },
  },
];
