/**
 * The agent's DNS interface (Consul docs, DNS interface): UDP and TCP on one port, answers from the catalog,
 * names outside the domain refused or relayed to the recursors.
 *
 * Answers are cached encoded per (name, type) together with the catalog index they were read at
 * (BENCHMARKS.md); a hit only re-checks `catalog.indexOf(topics)`, so a catalog change shows in the very next
 * answer. Size limits are applied per response (see `assemble`), so one cached plan serves every transport.
 */
import dgram from 'node:dgram';
import net, { isIP } from 'node:net';
import type { Logger } from 'pino';
import { phareError } from '../../api/index.ts';
import type { Authorizer } from '../acl/index.ts';
import type { Catalog } from '../catalog/index.ts';
import { isLoopback } from '../config/index.ts';
import { parseName } from './names.ts';
import { createRateLimiter, type RateLimiter } from './rate-limit.ts';
import { type AnswerPlan, createRecords, QTYPE, RCODE } from './records.ts';
import { assemble, errorResponse, parseQuery, type Query, questionName, sizeLimit } from './wire.ts';

/** Options of {@link createDnsServer}. */
export interface DnsServerOptions {
  catalog: Catalog;
  logger: Logger;
  /** The DNS domain, e.g. `consul`. */
  domain: string;
  /** This agent's datacenter. */
  datacenter: string;
  /** Upstream servers for names outside the domain, tried in order. @default [] (such names get REFUSED) */
  recursors?: { host: string; port: number }[];
  /** TTL in seconds per service: exact name, `'prefix*'` (longest wins) or `'*'`. @default {} (0 s) */
  serviceTtlSec?: Record<string, number>;
  /** TTL of node records in seconds. @default 0 */
  nodeTtlSec?: number;
  /** Serve only instances whose checks all pass; by default only critical ones are left out. @default false */
  onlyPassing?: boolean;
  /** How long each recursor gets to answer. @default 2000 */
  recursorTimeoutMs?: number;
  /** Most cached (name, type) answers kept; the oldest goes first. @default 4096 */
  cacheSize?: number;
  /** Idle TCP connections are closed after this long. @default 10000 */
  tcpIdleMs?: number;
  /**
   * UDP answers per second per client address (rate-limit.ts); 0 turns the limit off.
   * @default 100 when listening beyond loopback, else 0
   */
  udpRateLimit?: number;
  /** What the DNS token may read (records.ts); @default everything (ACLs off) */
  authorizer?: () => Authorizer;
}

/** A DNS server; `listen` starts it. */
export interface DnsServer {
  /** Binds UDP and TCP on the same port (port 0 picks one free for both) and resolves to the real address. */
  listen(addr: { host: string; port: number }): Promise<{ host: string; port: number }>;
  /** Stops both listeners and drops open TCP connections; idempotent. */
  close(): Promise<void>;
}

interface CacheEntry {
  /** null: the name is outside the domain. */
  plan: AnswerPlan | null;
  index: number;
}

type Reply = (out: Buffer) => void;

/** The TC (truncated) bit of the header flags (RFC 1035 §4.1.1). */
const TC = 0x0200;

const MAX_TCP_BACKLOG = 1 << 20;

/**
 * Creates the DNS server of an agent.
 *
 * @example
 * const dns = createDnsServer({ catalog, logger: logger.child({ component: 'dns' }), domain: 'consul', datacenter: 'dc1' });
 * const { port } = await dns.listen({ host: '127.0.0.1', port: 8600 });
 * // dig @127.0.0.1 -p 8600 web.service.consul SRV
 * await dns.close();
 */
export function createDnsServer(o: DnsServerOptions): DnsServer {
  const domain = o.domain.toLowerCase().replace(/^\.|\.$/g, '');
  if (domain === '')
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'dns.domain: expected a DNS domain such as "consul"');
  const { catalog, logger } = o;
  const recursors = o.recursors ?? [];
  const ra = recursors.length > 0;
  const recursorTimeoutMs = o.recursorTimeoutMs ?? 2000;
  const cacheSize = o.cacheSize ?? 4096;
  const tcpIdleMs = o.tcpIdleMs ?? 10_000;
  const records = createRecords(catalog, {
    domain,
    datacenter: o.datacenter,
    serviceTtlSec: o.serviceTtlSec,
    nodeTtlSec: o.nodeTtlSec,
    onlyPassing: o.onlyPassing,
    ...(o.authorizer ? { authorizer: o.authorizer } : {}),
  });
  const cache = new Map<string, CacheEntry>();

  /**
   * `minimalAny`: RFC 8482 §4.1 — over UDP an ANY query gets one RRset (A, else AAAA, else what ANY has),
   * not everything the name has, so ANY is no better an amplifier than A. TCP keeps Consul's answer.
   */
  function lookup(req: Buffer, q: Query, minimalAny: boolean): CacheEntry {
    // answers differ per ACL generation of the DNS token
    const acl = o.authorizer ? `${o.authorizer().cacheId}|` : '';
    const key = acl + (minimalAny ? `${q.key}|min` : q.key);
    const hit = cache.get(key);
    if (
      hit &&
      (hit.plan === null || hit.plan.topics.length === 0 || catalog.indexOf(hit.plan.topics) === hit.index)
    ) {
      return hit;
    }
    const parsed = parseName(questionName(req), domain);
    let entry: CacheEntry;
    if (parsed.kind === 'outside') {
      entry = { plan: null, index: 0 };
    } else {
      // Building is synchronous, so the index read afterwards is the one the plan was built at.
      let plan = records.plan(parsed, minimalAny ? QTYPE.A : q.qtype);
      if (minimalAny && plan.rcode === RCODE.NOERROR && plan.units.length === 0) {
        plan = records.plan(parsed, QTYPE.AAAA);
        if (plan.units.length === 0) plan = records.plan(parsed, q.qtype);
      }
      entry = { plan, index: plan.topics.length === 0 ? 0 : catalog.indexOf(plan.topics) };
    }
    if (hit) cache.delete(key);
    else if (cache.size >= cacheSize) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(key, entry);
    return entry;
  }

  function handle(req: Buffer, transport: 'udp' | 'tcp', reply: Reply): void {
    let q: Query | null = null;
    try {
      const parsed = parseQuery(req);
      if (!parsed.query) {
        if (parsed.rcode !== null) reply(errorResponse(req, parsed.rcode, null, ra));
        return;
      }
      q = parsed.query;
      if (q.qtype === QTYPE.AXFR || q.qtype === QTYPE.IXFR) {
        reply(errorResponse(req, RCODE.NOTIMP, q, ra));
        return;
      }
      const entry = lookup(req, q, transport === 'udp' && q.qtype === QTYPE.ANY);
      if (entry.plan === null) {
        if (ra) forward(req, q, reply);
        else reply(errorResponse(req, RCODE.REFUSED, q, ra)); // Consul: no handler for the zone
        return;
      }
      if (q.qclass !== 1 && q.qclass !== 255) {
        reply(errorResponse(req, RCODE.REFUSED, q, ra)); // only class IN lives here
        return;
      }
      reply(assemble(req, q, entry.plan, sizeLimit(q, transport), ra));
    } catch (err) {
      logger.error({ err }, 'dns: failed to answer a query');
      if (req.length >= 12) reply(errorResponse(req, RCODE.SERVFAIL, q, ra));
    }
  }

  /** Relays the query to each recursor in turn (Consul's `sequential` strategy); SERVFAIL when all fail. */
  function forward(req: Buffer, q: Query, reply: Reply): void {
    void (async () => {
      for (const r of recursors) {
        try {
          const res = await udpExchange(r, req, recursorTimeoutMs);
          const rcode = (res[3] as number) & 0xf;
          if (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) {
            reply(res);
            return;
          }
        } catch (err) {
          logger.debug({ err, recursor: `${r.host}:${r.port}` }, 'dns: recursor failed');
        }
      }
      reply(errorResponse(req, RCODE.SERVFAIL, q, ra));
    })().catch((err: unknown) => logger.error({ err }, 'dns: forwarding failed'));
  }

  let limiter: RateLimiter | null = null;

  /** A rate-limited query's answer: header and question only, TC set, so a real client retries over TCP. */
  function slip(req: Buffer, reply: Reply): void {
    const parsed = parseQuery(req);
    if (!parsed.query) return;
    const out = errorResponse(req, RCODE.NOERROR, parsed.query, ra);
    out.writeUInt16BE(out.readUInt16BE(2) | TC, 2);
    reply(out);
  }

  let udp: dgram.Socket | null = null;
  let tcp: net.Server | null = null;
  const conns = new Set<net.Socket>();
  let closing: Promise<void> | null = null;

  function onTcpConnection(sock: net.Socket): void {
    conns.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(tcpIdleMs, () => sock.destroy());
    sock.on('close', () => conns.delete(sock));
    sock.on('error', (err) => logger.debug({ err }, 'dns: tcp connection error'));
    let pending: Buffer = Buffer.alloc(0);
    const reply: Reply = (out) => {
      if (sock.destroyed || !sock.writable) return;
      // A client that pipelines queries but never reads would make us buffer without bound.
      if (sock.writableLength > MAX_TCP_BACKLOG) {
        sock.destroy();
        return;
      }
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(out.length, 0);
      sock.write(Buffer.concat([len, out]));
    };
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // RFC 7766: a stream of 2-byte-length-prefixed messages; a partial one waits for more data.
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        handle(msg, 'tcp', reply);
      }
    });
  }

  async function bindOnce(
    host: string,
    port: number,
  ): Promise<{ u: dgram.Socket; t: net.Server; port: number }> {
    const u = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
    // Which half failed goes into the message: UDP and TCP ports are taken independently.
    const tagged = (proto: 'udp' | 'tcp', reject: (e: unknown) => void) => (e: Error) =>
      reject(Object.assign(e, { proto }));
    await new Promise<void>((resolve, reject) => {
      const onError = tagged('udp', reject);
      u.once('error', onError);
      u.bind(port, host, () => {
        u.off('error', onError);
        resolve();
      });
    });
    const bound = u.address().port;
    const t = net.createServer(onTcpConnection);
    t.maxConnections = 1024;
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = tagged('tcp', reject);
        t.once('error', onError);
        t.listen({ port: bound, host, exclusive: true }, () => {
          t.off('error', onError);
          resolve();
        });
      });
    } catch (err) {
      u.close();
      throw err;
    }
    return { u, t, port: bound };
  }

  return {
    async listen(addr) {
      if (udp || tcp) throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'dns: the server is already listening');
      let lastErr: unknown;
      // Port 0: the kernel picks a free UDP port; TCP may find it taken, so try again a few times.
      for (let attempt = 0; attempt < (addr.port === 0 ? 20 : 1); attempt++) {
        try {
          const { u, t, port } = await bindOnce(addr.host, addr.port);
          udp = u;
          tcp = t;
          try {
            u.setRecvBufferSize(4 * 1024 * 1024); // absorb bursts; the kernel may cap it at rmem_max
          } catch {}
          u.on('error', (err) => logger.warn({ err }, 'dns: udp socket error'));
          const limit = o.udpRateLimit ?? (isLoopback(addr.host) ? 0 : 100);
          limiter = limit > 0 ? createRateLimiter({ perSecond: limit }) : null;
          u.on('message', (msg, rinfo) => {
            const verdict = limiter ? limiter.take(rinfo.address) : 'answer';
            if (verdict !== 'answer') {
              if (verdict === 'slip') slip(msg, (out) => u.send(out, rinfo.port, rinfo.address, () => {}));
              return;
            }
            handle(msg, 'udp', (out) => {
              u.send(out, rinfo.port, rinfo.address, (err) => {
                if (err) logger.debug({ err }, 'dns: udp send failed');
              });
            });
          });
          t.on('error', (err) => logger.warn({ err }, 'dns: tcp server error'));
          logger.info({ host: addr.host, port }, 'dns listening');
          return { host: addr.host, port };
        } catch (err) {
          lastErr = err;
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
        }
      }
      throw listenError(addr, lastErr);
    },
    close() {
      closing ??= (async () => {
        const u = udp;
        const t = tcp;
        for (const c of conns) c.destroy();
        await Promise.all([
          u ? new Promise<void>((resolve) => u.close(() => resolve())) : undefined,
          t ? new Promise<void>((resolve) => t.close(() => resolve())) : undefined,
        ]);
        cache.clear();
      })();
      return closing;
    },
  };
}

/**
 * The same words as a busy HTTP port (http/server.ts): what is taken, who likely holds it, which flag moves
 * it. DNS has one more usual suspect: a local resolver (dnsmasq, systemd-resolved) on 53 or 8600.
 */
function listenError(addr: { host: string; port: number }, err: unknown): Error {
  const e = err as (NodeJS.ErrnoException & { proto?: string }) | undefined;
  const where = `${addr.host}:${addr.port}`;
  const proto = e?.proto ? ` (${e.proto})` : '';
  if (e?.code === 'EADDRINUSE')
    return phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--dns-addr: ${where}${proto} is already in use (another agent, Consul, or a local DNS server?); ` +
        'choose another with --dns-addr, or --dns-addr "" to turn DNS off',
      { cause: err },
    );
  if (e?.code === 'EACCES')
    return phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--dns-addr: cannot listen on ${where}${proto} (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE; ` +
        'choose another with --dns-addr (Consul uses 8600)',
      { cause: err },
    );
  return phareError(
    'PHARE_ERR_INVALID_ARGUMENT',
    `--dns-addr: cannot listen on ${where}${proto} (${e?.code ?? e?.message ?? 'unknown error'})`,
    { cause: err },
  );
}

/** Sends one query over UDP and resolves with the reply carrying the same ID from that server. */
function udpExchange(
  server: { host: string; port: number },
  msg: Buffer,
  timeoutMs: number,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const sock = dgram.createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const id = msg.readUInt16BE(0);
    let done = false;
    const finish = (err: Error | null, res?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(res as Buffer);
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => finish(err));
    sock.on('message', (res) => {
      if (res.length >= 12 && res.readUInt16BE(0) === id && res[2] !== undefined && (res[2] & 0x80) !== 0) {
        finish(null, res);
      }
    });
    sock.send(msg, server.port, server.host, (err) => {
      if (err) finish(err);
    });
  });
}
