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
import { serialize, setQueryMeta, waitPast } from './blocking.ts';
import { AclFilter, authz, type Route, type RouteContext, tail } from './context.ts';
import { HttpError } from './errors.ts';
import { type Blocking, blocking, checkDatacenter, flag, one, type QueryParams } from './query.ts';
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

/**
 * `GET /v1/kv/:key`. Synchronous unless it has to wait (`?index` not yet passed): an answer at once costs no
 * promise turns. Bodies are serialized once per (key or prefix, form, token) and index and then served from
 * the agent's body cache, as catalog reads are — an entry's ModifyIndex (a prefix's index) changes with
 * every change of what the body shows, so an index that has not moved means the same bytes.
 */
function get(req: FastifyRequest, reply: FastifyReply, ctx: RouteContext): Promise<void> | undefined {
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
  const b = blocking(q);
  if (b.index > 0 && kv.indexOf(watch) <= b.index) {
    const source = {
      current: () => kv.indexOf(watch),
      wait: (min: number, ms: number, signal: AbortSignal) => kv.waitForChange(watch, min, ms, signal),
    };
    return waitPast(source, b, ctx.closing, reply).then((here) => {
      if (here) return answerWhenCurrent(reply, ctx, q, key, watch, b, acl);
    });
  }
  return answerWhenCurrent(reply, ctx, q, key, watch, b, acl);
}

/** `?consistent` on a cluster: answer only once this agent's cache holds everything etcd had committed. */
function answerWhenCurrent(...args: Parameters<typeof answer>): Promise<void> | undefined {
  const [, ctx, , , , b] = args;
  if (b.consistency === 'consistent' && ctx.kv.shared) return ctx.kv.catchUp().then(() => answer(...args));
  answer(...args);
  return undefined;
}

/** The answer of a KV read once it may be given (see {@link get}). */
function answer(
  reply: FastifyReply,
  ctx: RouteContext,
  q: QueryParams,
  key: string,
  watch: KvWatch,
  b: Blocking,
  acl: AclFilter,
): void {
  const { kv } = ctx;
  const index = kv.indexOf(watch);
  setQueryMeta(reply, index, b.consistency, ctx.catalog.leaderState());
  const pretty = flag(q, 'pretty');
  const raw = has(q, 'raw') && !watch.prefix;
  // the misspelled `seperator` is still accepted (Consul's historic spelling)
  const sep = has(q, 'keys') ? (one(q, 'separator') ?? one(q, 'seperator') ?? '') : undefined;
  if (!watch.prefix) {
    const e = kv.get(key);
    if (!e) {
      reply.code(404).send();
      return;
    }
    if (raw) {
      // Stored values are arbitrary bytes: never let a browser sniff them into HTML.
      reply
        .header('Content-Type', 'text/plain')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', 'sandbox')
        .send(Buffer.from(e.value ?? '', 'base64'));
      return;
    }
    // a single key read was authorized above, so its body does not depend on the token
    const ck = `kv\u0000${pretty ? 'p' : ''}\u0000${key}`;
    let body = ctx.cache.get(ck, e.modifyIndex)?.body;
    if (!body) {
      body = serialize([renderEntry(e)], pretty);
      ctx.cache.set(ck, e.modifyIndex, body);
    }
    reply.header('content-type', 'application/json').send(body);
    ctx.fast.remember(reply.request, b, (a) => {
      if (!a.allows('key', key, 'read')) return undefined;
      const now = kv.get(key);
      const c = now && ctx.cache.get(ck, now.modifyIndex);
      return c && { index: kv.indexOf(watch), body: c.body, filtered: false };
    });
    return;
  }
  const ck = `kv\u0000${pretty ? 'p' : ''}${sep === undefined ? 'r' : `k${sep}`}\u0000${key}`;
  const reader = acl.authz.cacheId;
  const hit = ctx.cache.get(ck, index, reader);
  let body = hit?.body;
  let filtered = hit?.filtered ?? false;
  if (!hit) {
    const entries = kv.list(key).filter((e) => acl.may('key', e.key));
    filtered = acl.filtered;
    if (sep !== undefined) {
      const list = listKeys(entries, key, sep);
      // no keys is a 404, except for the root, which answers []
      body = list.length === 0 && key !== '' ? undefined : serialize(list, pretty);
    } else
      body =
        entries.length === 0
          ? undefined
          : serialize(
              entries.map((e) => renderEntry(e)),
              pretty,
            );
    // a listing that is empty (404) is cached as an empty body
    ctx.cache.set(ck, index, body ?? EMPTY, Date.now(), filtered, reader);
  }
  acl.mark(reply, filtered);
  if (!body || body.length === 0) {
    reply.code(404).send();
    return;
  }
  reply.header('content-type', 'application/json').send(body);
  ctx.fast.remember(reply.request, b, (a) => {
    const at = kv.indexOf(watch);
    const c = ctx.cache.get(ck, at, a.cacheId);
    return c && c.body.length > 0 ? { index: at, body: c.body, filtered: c.filtered } : undefined;
  });
}

const EMPTY = Buffer.alloc(0);

async function put(req: FastifyRequest, reply: FastifyReply, ctx: RouteContext): Promise<void> {
  const key = tail(req);
  const q = req.query as QueryParams;
  checkDatacenter(q, ctx.config.datacenter);
  if (key === '') throw new HttpError(400, 'Missing key name');
  conflicting(req, q, ['cas', 'acquire', 'release']);
  sendJson(reply, await putKey(ctx, key, req.body as Buffer | undefined, q, authz(req, ctx)));
}

/**
 * The write of `PUT /v1/kv/<key>` once the request is checked (a key, one of `?cas`/`?acquire`/`?release` at
 * most): the token's `key:write`, then the change; resolves with Consul's answer (`true`/`false`) once durable.
 * The route and the write fast path (fast-write.ts, a plain put with no query) both go through it.
 *
 * @example
 * const ok = await putKey(ctx, 'config/web', Buffer.from('on'), {}, ctx.acl.resolve(token));
 */
export async function putKey(
  ctx: RouteContext,
  key: string,
  body: Buffer | undefined,
  q: QueryParams,
  authorizer: Authorizer,
): Promise<boolean> {
  authorizer.require('key', key, 'write');
  const w: KvWrite = {
    key,
    value: body && body.length > 0 ? body.toString('base64') : null,
    flags: has(q, 'flags') ? parseUint64(one(q, 'flags') ?? '').toString() : '0',
  };
  const cas = has(q, 'cas') ? Number(parseUint64(one(q, 'cas') ?? '')) : undefined;
  const acquire = has(q, 'acquire') ? (one(q, 'acquire') ?? '') : undefined;
  const release = has(q, 'release') ? (one(q, 'release') ?? '') : undefined;
  return writeKv(ctx, (tx) => {
    if (cas !== undefined) return kvCas(tx, w, cas);
    if (acquire !== undefined) {
      // Lock-delay is wall time, checked before the change as Consul's leader does (KVS.Apply).
      if (tx.lockDelayUntil(key) > tx.now) return false;
      return kvLock(tx, w, acquire);
    }
    if (release !== undefined) return kvUnlock(tx, w, release);
    return kvSet(tx, w);
  });
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
