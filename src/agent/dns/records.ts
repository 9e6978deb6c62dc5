/**
 * Turns catalog entries into encoded DNS records (Consul docs, DNS interface). The result, an
 * {@link AnswerPlan}, holds every record already in wire form so the server can cache it per (name, type,
 * index) and only shuffle, trim and patch the header on each query (BENCHMARKS.md: `dns-packet` encoding of
 * SRV plus additional records is the expensive part of answering).
 */
import { isIP } from 'node:net';
import { type Answer, encode } from 'dns-packet';
import type { Authorizer } from '../acl/index.ts';
import { type Catalog, type ServiceRecord, Topic, worstStatus } from '../catalog/index.ts';
import { ipToHex, type ParsedName } from './names.ts';

/** Response codes (RFC 1035 §4.1.1). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** Query types this server knows by number. */
export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

/** One additional record (an SRV target's address), deduplicated across answers by `key`. */
export interface ExtraRecord {
  key: string;
  rr: Buffer;
}

/** One answer record and the additional records that go with it (kept or dropped together). */
export interface AnswerUnit {
  /** The encoded record; its owner name is a pointer to the question (offset 12). */
  rr: Buffer;
  extras: readonly ExtraRecord[];
}

/** Everything needed to answer one (name, type), already encoded. */
export interface AnswerPlan {
  rcode: number;
  units: readonly AnswerUnit[];
  /** Sum of the units' `rr` lengths. */
  answersLength: number;
  /** Encoded authority section (the SOA of a negative answer), and its record count. */
  authority: Buffer;
  authorityCount: number;
  /** Every unit's extras, deduplicated and concatenated, and their count. */
  extras: Buffer;
  extraCount: number;
  /** Catalog topics the answer was read from: it is stale once `catalog.indexOf(topics)` moves. */
  topics: readonly string[];
}

/** Options of {@link createRecords}. */
export interface RecordsOptions {
  /**
   * With ACLs on, what the DNS token may read (asked per query, so a policy given to it later applies):
   * instances need service:read and node:read, node names node:read — as Consul's DNS. @default everything
   */
  authorizer?: () => Authorizer;
  /** The DNS domain, e.g. `consul`. */
  domain: string;
  /** This agent's datacenter; names naming another one get NXDOMAIN ("No path to datacenter"). */
  datacenter: string;
  /** TTL per service name: exact name, `'prefix*'` (longest wins) or `'*'`. @default {} (0 s) */
  serviceTtlSec?: Record<string, number>;
  /** TTL of node records. @default 0 */
  nodeTtlSec?: number;
  /** Drop instances unless all their checks pass (else only critical ones are dropped). @default false */
  onlyPassing?: boolean;
}

/** Builds answer plans from the catalog. */
export interface Records {
  plan(name: ParsedName, qtype: number): AnswerPlan;
}

const QNAME_PTR = Buffer.from([0xc0, 0x0c]);
const EMPTY = Buffer.alloc(0);

/**
 * Creates the record builder over a catalog.
 *
 * @example
 * const records = createRecords(catalog, { domain: 'consul', datacenter: 'dc1' });
 * const plan = records.plan(parseName('web.service.consul', 'consul'), QTYPE.SRV);
 * plan.units.length; // healthy instances of web
 */
export function createRecords(catalog: Catalog, options: RecordsOptions): Records {
  const domain = options.domain.toLowerCase().replace(/^\.|\.$/g, '');
  const dc = options.datacenter.toLowerCase();
  const nodeTtl = options.nodeTtlSec ?? 0;
  const onlyPassing = options.onlyPassing ?? false;
  const ttlOf = serviceTtlLookup(options.serviceTtlSec ?? {});

  function soa(): Buffer {
    // Consul docs, DNS interface: `consul. 0 IN SOA ns.consul. hostmaster.consul. <unix time> 3600 600 86400 0`
    return encodeRR({
      type: 'SOA',
      name: domain,
      ttl: 0,
      data: {
        mname: `ns.${domain}`,
        rname: `hostmaster.${domain}`,
        serial: Math.floor(catalog.clock.now() / 1000) >>> 0,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 0,
      },
    });
  }

  function negative(rcode: number, topics: readonly string[]): AnswerPlan {
    return makePlan(rcode, [], soa(), 1, topics);
  }

  function otherDc(name: string | null): boolean {
    return name !== null && name !== dc;
  }

  /** Address records (or a CNAME for a host name) for one address; empty when the type does not match. */
  function addressRecords(addr: string, qtype: number, ttl: number): Buffer[] {
    const fam = isIP(addr);
    const wantA = qtype === QTYPE.A || qtype === QTYPE.ANY;
    const wantAAAA = qtype === QTYPE.AAAA || qtype === QTYPE.ANY;
    if (fam === 4) return wantA ? [answerRR({ type: 'A', ttl, data: addr })] : [];
    if (fam === 6) return wantAAAA ? [answerRR({ type: 'AAAA', ttl, data: addr })] : [];
    if (addr !== '' && validName(addr) && (wantA || wantAAAA))
      return [answerRR({ type: 'CNAME', ttl, data: addr })];
    return [];
  }

  function servicePlan(p: Extract<ParsedName, { kind: 'service' }>, qtype: number): AnswerPlan {
    if (otherDc(p.dc)) return negative(RCODE.NXDOMAIN, []);
    const a = options.authorizer?.();
    const all = catalog
      .instancesOf(p.service)
      .filter(
        (s) => !a || a.allowAll || (a.allows('service', s.name, 'read') && a.allows('node', s.node, 'read')),
      );
    const topics = [Topic.service(p.service)];
    const seenNodes = new Set<string>();
    for (const s of all) {
      if (!seenNodes.has(s.node)) {
        seenNodes.add(s.node);
        topics.push(Topic.node(s.node));
      }
    }
    const tag = p.tag;
    const healthy: { s: ServiceRecord; addr: string; warning: boolean; nodeAddr: string }[] = [];
    for (const s of all) {
      if (tag !== null && !s.tags.some((t) => t.toLowerCase() === tag)) continue;
      const node = catalog.node(s.node);
      if (!node) continue;
      const status = worstStatus(catalog.checksFor(s.node, s.id).map((c) => c.status));
      if (status === 'critical' || (onlyPassing && status !== 'passing')) continue;
      healthy.push({
        s,
        addr: s.address || node.address,
        warning: status === 'warning',
        nodeAddr: node.address,
      });
    }
    // No healthy instance is the same as an unknown service (Consul docs, DNS interface).
    if (healthy.length === 0) return negative(RCODE.NXDOMAIN, topics);
    const ttl = ttlOf(p.service);
    const units: AnswerUnit[] = [];
    if (qtype === QTYPE.SRV) {
      const seen = new Set<string>();
      for (const h of healthy) {
        const key = `${h.s.node}\u0000${h.addr}\u0000${h.s.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const target = srvTarget(h.s, h.addr, h.nodeAddr);
        if (!target) continue;
        const weight = h.warning ? h.s.weights.Warning : h.s.weights.Passing;
        const rr = answerRR({
          type: 'SRV',
          ttl,
          data: { priority: 1, weight: clampU16(weight), port: clampU16(h.s.port), target },
        });
        const extras: ExtraRecord[] = [];
        const fam = isIP(h.addr);
        if (fam === 4)
          extras.push({ key: target, rr: encodeRR({ type: 'A', name: target, ttl, data: h.addr }) });
        if (fam === 6)
          extras.push({ key: target, rr: encodeRR({ type: 'AAAA', name: target, ttl, data: h.addr }) });
        units.push({ rr, extras });
      }
    } else if (qtype === QTYPE.A || qtype === QTYPE.AAAA || qtype === QTYPE.ANY) {
      // Two instances on one address give one record (Consul docs, DNS interface).
      const seen = new Set<string>();
      for (const h of healthy) {
        if (seen.has(h.addr)) continue;
        seen.add(h.addr);
        for (const rr of addressRecords(h.addr, qtype, ttl)) units.push({ rr, extras: [] });
      }
    }
    if (units.length === 0) return negative(RCODE.NOERROR, topics); // NODATA: the name exists
    return makePlan(RCODE.NOERROR, units, EMPTY, 0, topics);
  }

  function srvTarget(s: ServiceRecord, addr: string, nodeAddr: string): string | null {
    const fam = isIP(addr);
    if (!s.address || s.address === nodeAddr) {
      const byNode = `${s.node}.node.${dc}.${domain}`;
      if (validName(byNode)) return byNode;
    }
    if (fam !== 0) return `${ipToHex(addr, fam as 4 | 6)}.addr.${dc}.${domain}`;
    return validName(addr) ? addr : null;
  }

  function nodePlan(p: Extract<ParsedName, { kind: 'node' }>, qtype: number): AnswerPlan {
    if (otherDc(p.dc)) return negative(RCODE.NXDOMAIN, []);
    const topics = [Topic.node(p.node)];
    const node = catalog.node(p.node);
    const a = options.authorizer?.();
    if (!node || (a && !a.allows('node', node.node, 'read'))) return negative(RCODE.NXDOMAIN, topics);
    const units: AnswerUnit[] = addressRecords(node.address, qtype, nodeTtl).map((rr) => ({
      rr,
      extras: [],
    }));
    if (qtype === QTYPE.TXT || qtype === QTYPE.ANY) {
      // Node meta as RFC 1464 `key=value` strings (Consul docs, DNS interface).
      for (const [k, v] of Object.entries(node.meta)) {
        const text = k.startsWith('rfc1035-') ? v : `${k}=${v}`;
        if (Buffer.byteLength(text) > 255) continue;
        units.push({ rr: answerRR({ type: 'TXT', ttl: nodeTtl, data: [text] }), extras: [] });
      }
    }
    if (units.length === 0) return negative(RCODE.NOERROR, topics);
    return makePlan(RCODE.NOERROR, units, EMPTY, 0, topics);
  }

  function addrPlan(p: Extract<ParsedName, { kind: 'addr' }>, qtype: number): AnswerPlan {
    if (otherDc(p.dc)) return negative(RCODE.NXDOMAIN, []);
    const units = addressRecords(p.ip, qtype, nodeTtl).map((rr) => ({ rr, extras: [] }));
    if (units.length === 0) return negative(RCODE.NOERROR, []);
    return makePlan(RCODE.NOERROR, units, EMPTY, 0, []);
  }

  function apexPlan(qtype: number): AnswerPlan {
    const topics = [Topic.node(catalog.local.name)];
    const units: AnswerUnit[] = [];
    if (qtype === QTYPE.SOA || qtype === QTYPE.ANY) units.push({ rr: withQnamePointer(soa()), extras: [] });
    if (qtype === QTYPE.NS || qtype === QTYPE.ANY) {
      // The agent is the only name server of its domain: `<node>.node.<dc>.<domain>` with its address.
      const ns = `${catalog.local.name.toLowerCase()}.node.${dc}.${domain}`;
      const addr = catalog.node(catalog.local.name)?.address ?? '';
      const fam = isIP(addr);
      if (validName(ns)) {
        const extras: ExtraRecord[] = [];
        if (fam === 4)
          extras.push({ key: ns, rr: encodeRR({ type: 'A', name: ns, ttl: nodeTtl, data: addr }) });
        if (fam === 6)
          extras.push({ key: ns, rr: encodeRR({ type: 'AAAA', name: ns, ttl: nodeTtl, data: addr }) });
        units.push({ rr: answerRR({ type: 'NS', ttl: nodeTtl, data: ns }), extras });
      }
    }
    if (units.length === 0) return negative(RCODE.NOERROR, topics);
    return makePlan(RCODE.NOERROR, units, EMPTY, 0, topics);
  }

  return {
    plan(name, qtype) {
      switch (name.kind) {
        case 'service':
          return servicePlan(name, qtype);
        case 'node':
          return nodePlan(name, qtype);
        case 'addr':
          return addrPlan(name, qtype);
        case 'apex':
          return apexPlan(qtype);
        case 'invalid':
          return negative(RCODE.NXDOMAIN, []);
        case 'outside':
          // The server forwards or refuses these before asking for a plan.
          return makePlan(RCODE.REFUSED, [], EMPTY, 0, []);
      }
    },
  };
}

function makePlan(
  rcode: number,
  units: AnswerUnit[],
  authority: Buffer,
  authorityCount: number,
  topics: readonly string[],
): AnswerPlan {
  const seen = new Set<string>();
  const extras: Buffer[] = [];
  let answersLength = 0;
  for (const u of units) {
    answersLength += u.rr.length;
    for (const e of u.extras) {
      if (seen.has(e.key)) continue;
      seen.add(e.key);
      extras.push(e.rr);
    }
  }
  return {
    rcode,
    units,
    answersLength,
    authority,
    authorityCount,
    extras: Buffer.concat(extras),
    extraCount: extras.length,
    topics,
  };
}

/**
 * One record in wire form, with `dns-packet` doing the encoding (its packet encoder, header stripped).
 *
 * @example
 * encodeRR({ type: 'A', name: 'web.service.consul', ttl: 0, data: '10.0.0.1' }).length; // 34
 */
export function encodeRR(rr: Answer): Buffer {
  return encode({ type: 'response', answers: [rr] }).subarray(12);
}

/** A record owned by the question name: encoded with the root name, which is then swapped for a pointer. */
function answerRR(rr: DistributiveOmit<Answer, 'name'>): Buffer {
  return withQnamePointer(encodeRR({ ...rr, name: '.' } as Answer));
}

/** Replaces a record's owner name by a compression pointer to the question name at offset 12. */
function withQnamePointer(rr: Buffer): Buffer {
  let o = 0;
  while (rr[o] !== 0) o += (rr[o] as number) + 1;
  return Buffer.concat([QNAME_PTR, rr.subarray(o + 1)]);
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function clampU16(n: number): number {
  return Math.max(0, Math.min(65535, Math.trunc(n) || 0));
}

/** A name `dns-packet` can encode as is: labels of 1–63 bytes, at most 253 characters. */
function validName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  for (const label of name.split('.')) {
    const len = Buffer.byteLength(label);
    if (len === 0 || len > 63) return false;
  }
  return true;
}

/**
 * Consul's `service_ttl` lookup: the exact name wins, then the longest `prefix*`, then `*`, else 0.
 *
 * @example
 * serviceTtlLookup({ '*': 5, 'web*': 30, web: 60 })('web-api'); // 30
 */
export function serviceTtlLookup(map: Record<string, number>): (service: string) => number {
  const exact = new Map<string, number>();
  const prefixes: [string, number][] = [];
  for (const [k, v] of Object.entries(map)) {
    const ttl = Math.max(0, Math.trunc(v)) >>> 0;
    if (k.endsWith('*')) prefixes.push([k.slice(0, -1).toLowerCase(), ttl]);
    else exact.set(k.toLowerCase(), ttl);
  }
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return (service) => {
    const s = service.toLowerCase();
    const e = exact.get(s);
    if (e !== undefined) return e;
    for (const [p, ttl] of prefixes) if (s.startsWith(p)) return ttl;
    return 0;
  };
}
