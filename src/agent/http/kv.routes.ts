/**
 * `/v1/kv/:key` (Consul docs, KV store HTTP API; docs/api/kv.md). Reads are blocking-capable: a key's
 * watch wakes only when that key changes, a prefix's only when something under it does. Writes answer
 * `true`/`false` once durable. As in Consul, `?recurse`, `?keys`, `?raw`, `?cas`, `?acquire`, `?release`
 * and `?flags` are presence parameters (their value, where used, is read as is).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authorizer } from '../acl/index.ts';
import {
  type KvEntry,
  KvOpError,
  type KvWatch,
  type KvWrite,
  kvCas,
  kvDelete,
  kvDeleteCas,
  kvDeleteTree,
  kvLock,
  kvSet,
  kvUnlock,
} from '../kv/index.ts';
import { parkRead, serialize, setQueryMeta } from './blocking.ts';
import { AclFilter, authz, type Route, type RouteContext, tail } from './context.ts';
import { HttpError } from './errors.ts';
import { checkDatacenter, flag, one, type QueryParams } from './query.ts';
import { sendJson } from './respond.ts';

/** Consul's `kv_max_value_size` default. */
export const KV_MAX_VALUE_BYTES = 512 * 1024;

const has = (q: QueryParams, k: string) => q[k] !== undefined;

/** A uint64 query parameter, with Go's strconv.ParseUint error text (Consul answers it as a 500). */
export function parseUint64(v: string): bigint {
  if (!/^\d+$/.test(v))
    throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
  const n = BigInt(v);
  if (n > 18446744073709551615n)
    throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(v)}: value out of range`);
  return n;
}

/** A DirEntry in Consul's field order; `Session` only while locked; an empty value is `null`. */
export function renderEntry(e: KvEntry, withValue = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    LockIndex: e.lockIndex,
    Key: e.key,
    // uint64: written as the exact integer even past 2^53
    Flags: (JSON as unknown as { rawJSON(s: string): unknown }).rawJSON(e.flags),
    Value: withValue ? e.value : null,
  };
  if (e.session !== '') out.Session = e.session;
  out.CreateIndex = e.createIndex;
  out.ModifyIndex = e.modifyIndex;
  return out;
}

/** `?keys[&separator=/]`: keys under the prefix, cut after the first separator past it, de-duplicated. */
function listKeys(entries: readonly KvEntry[], prefix: string, sep: string): string[] {
  const out: string[] = [];
  let prev = '';
  for (const e of entries) {
    if (sep === '') {
      out.push(e.key);
      continue;
    }
    const at = e.key.indexOf(sep, prefix.length);
    const k = at < 0 ? e.key : e.key.slice(0, at + sep.length);
    if (k !== prev) out.push(k);
    prev = k;
  }
  return out;
}

/** Answers 400 `Conflicting flags: <raw query>` when more than one of `names` is given. */
function conflicting(req: FastifyRequest, q: QueryParams, names: readonly string[]): void {
  if (names.filter((n) => has(q, n)).length > 1) {
    const raw = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    throw new HttpError(400, `Conflicting flags: ${raw}`);
  }
}

/**
 * Consul's KeyWritePrefix: write on the prefix, and on every key now under it (a deny rule deeper down
 * refuses the whole delete-tree).
 */
export function requireKeyWritePrefix(a: Authorizer, prefix: string, keys: readonly string[]): void {
  a.require('key', prefix, 'write');
  if (a.allowAll) return;
  for (const k of keys) a.require('key', k, 'write');
}

async function get(req: FastifyRequest, reply: FastifyReply, ctx: RouteContext): Promise<void> {
  const { kv } = ctx;
  const key = tail(req);
  const q = req.query as QueryParams;
  checkDatacenter(q, ctx.config.datacenter);
  const keys = has(q, 'keys');
  const recurse = has(q, 'recurse');
  if (!keys && !recurse && key === '') throw new HttpError(400, 'Missing key name');
  // one key: key:read or 403; a listing: what the token may read, marked when something was left out
  const acl = new AclFilter(authz(req, ctx));
  if (!keys && !recurse) acl.authz.require('key', key, 'read');
  const watch: KvWatch = { key, prefix: keys || recurse };
  const b = await parkRead(
    { current: () => kv.indexOf(watch), wait: (min, ms, signal) => kv.waitForChange(watch, min, ms, signal) },
    ctx.closing,
    req,
    reply,
  );
  if (!b) return;
  // ?consistent on a cluster: answer only once this agent's cache holds everything etcd had committed.
  if (b.consistency === 'consistent') await kv.catchUp();
  setQueryMeta(reply, kv.indexOf(watch), b.consistency, ctx.catalog.leaderState());
  const pretty = flag(q, 'pretty');
  if (keys) {
    // the misspelled `seperator` is still accepted (Consul's historic spelling)
    const sep = one(q, 'separator') ?? one(q, 'seperator') ?? '';
    const list = listKeys(
      kv.list(key).filter((e) => acl.may('key', e.key)),
      key,
      sep,
    );
    acl.mark(reply);
    // no keys is a 404, except for the root, which answers []
    if (list.length === 0 && key !== '') {
      reply.code(404).send();
      return;
    }
    reply.header('Content-Type', 'application/json').send(serialize(list, pretty));
    return;
  }
  const entries = (recurse ? kv.list(key) : [kv.get(key)]).filter(
    (e): e is KvEntry => e !== undefined && acl.may('key', e.key),
  );
  acl.mark(reply);
  if (entries.length === 0) {
    reply.code(404).send();
    return;
  }
  if (has(q, 'raw') && !recurse) {
    const body = Buffer.from((entries[0] as KvEntry).value ?? '', 'base64');
    // Stored values are arbitrary bytes: never let a browser sniff them into HTML.
    reply
      .header('Content-Type', 'text/plain')
      .header('X-Content-Type-Options', 'nosniff')
      .header('Content-Security-Policy', 'sandbox')
      .send(body);
    return;
  }
  reply.header('Content-Type', 'application/json').send(
    serialize(
      entries.map((e) => renderEntry(e)),
      pretty,
    ),
  );
}

async function put(req: FastifyRequest, reply: FastifyReply, ctx: RouteContext): Promise<void> {
  const key = tail(req);
  const q = req.query as QueryParams;
  checkDatacenter(q, ctx.config.datacenter);
  if (key === '') throw new HttpError(400, 'Missing key name');
  conflicting(req, q, ['cas', 'acquire', 'release']);
  authz(req, ctx).require('key', key, 'write');
  const body = req.body as Buffer | undefined;
  const w: KvWrite = {
    key,
    value: body && body.length > 0 ? body.toString('base64') : null,
    flags: has(q, 'flags') ? parseUint64(one(q, 'flags') ?? '').toString() : '0',
  };
  const cas = has(q, 'cas') ? Number(parseUint64(one(q, 'cas') ?? '')) : undefined;
  const acquire = has(q, 'acquire') ? (one(q, 'acquire') ?? '') : undefined;
  const release = has(q, 'release') ? (one(q, 'release') ?? '') : undefined;
  const ok = await writeKv(ctx, (tx) => {
    if (cas !== undefined) return kvCas(tx, w, cas);
    if (acquire !== undefined) {
      // Lock-delay is wall time, checked before the change as Consul's leader does (KVS.Apply).
      if (tx.lockDelayUntil(key) > tx.now) return false;
      return kvLock(tx, w, acquire);
    }
    if (release !== undefined) return kvUnlock(tx, w, release);
    return kvSet(tx, w);
  });
  sendJson(reply, ok);
}

async function del(req: FastifyRequest, reply: FastifyReply, ctx: RouteContext): Promise<void> {
  const key = tail(req);
  const q = req.query as QueryParams;
  checkDatacenter(q, ctx.config.datacenter);
  conflicting(req, q, ['recurse', 'cas']);
  const recurse = has(q, 'recurse');
  if (!recurse && key === '') throw new HttpError(400, 'Missing key name');
  const cas = has(q, 'cas') ? Number(parseUint64(one(q, 'cas') ?? '')) : undefined;
  const a = authz(req, ctx);
  if (!recurse) a.require('key', key, 'write');
  const ok = await writeKv(ctx, (tx) => {
    if (!recurse) return cas !== undefined ? kvDeleteCas(tx, key, cas) : kvDelete(tx, key);
    // checked inside the write: against the keys the tree holds at the moment it is deleted
    requireKeyWritePrefix(
      a,
      key,
      tx.list(key).map((e) => e.key),
    );
    return kvDeleteTree(tx, key);
  });
  sendJson(reply, ok);
}

/** Runs a KV write; Consul's state-store errors (`invalid session "x"`) are 500s with their text. */
async function writeKv(ctx: RouteContext, fn: Parameters<RouteContext['kv']['write']>[0]): Promise<boolean> {
  try {
    return (await ctx.kv.write(fn)) as boolean;
  } catch (err) {
    if (err instanceof KvOpError) throw new HttpError(500, err.message);
    throw err;
  }
}

/** The KV route table. */
export const kvRoutes: Route[] = [
  {
    path: '/v1/kv/*',
    methods: ['GET', 'PUT', 'DELETE'],
    writesOnGet: false,
    bodyLimit: KV_MAX_VALUE_BYTES,
    bodyTooLarge: (n) =>
      new HttpError(
        413,
        `Request body(${Number.isFinite(n) ? n : `more than ${KV_MAX_VALUE_BYTES}`} bytes) too large, max size: ${KV_MAX_VALUE_BYTES} bytes. See https://www.consul.io/docs/agent/config/config-files#kv_max_value_size.`,
      ),
    handler: (req, reply, ctx) =>
      req.method === 'PUT'
        ? put(req, reply, ctx)
        : req.method === 'DELETE'
          ? del(req, reply, ctx)
          : get(req, reply, ctx),
  },
];
