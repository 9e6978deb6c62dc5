/**
 * The hot path's wire handling: reading a query header and question without a full decode, and building
 * a response from a cached {@link AnswerPlan} (shuffle, trim to the size limit, patch the header).
 */
import { type AnswerPlan, QTYPE, RCODE } from './records.ts';

/** A query as far as the server needs it. */
export interface Query {
  id: number;
  flags: number;
  /** Cache key: the question's name and type bytes, lower-cased (DNS names are case-insensitive). */
  key: string;
  qtype: number;
  qclass: number;
  /** Offset just past the question (the question is `buf[12, questionEnd)`). */
  questionEnd: number;
  /** The EDNS0 UDP payload size the client advertised, or null without an OPT record. */
  ednsSize: number | null;
}

/** A parsed query, or why there is none: an RCODE to answer with, or `null` for silence. */
export type ParseResult = { query: Query; rcode?: undefined } | { query?: undefined; rcode: number | null };

/** Classic DNS over UDP without EDNS0 (RFC 1035 §4.2.1). */
export const UDP_PLAIN_LIMIT = 512;
/** What we advertise in our OPT record, and the ceiling for a client's EDNS0 size (Consul caps at 65467). */
export const EDNS_MAX = 65467;
export const ADVERTISED_UDP_SIZE = 4096;
/** A TCP message's length prefix is 16 bits. */
export const TCP_LIMIT = 65535;

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;

/**
 * Reads a query's header, question and OPT record. Never throws.
 *
 * @example
 * const r = parseQuery(msg);
 * if (r.query) answer(r.query); else if (r.rcode !== null) sendError(msg, r.rcode);
 */
export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < 12) return { rcode: null }; // no header to answer to
  const flags = buf.readUInt16BE(2);
  if (flags & QR) return { rcode: null }; // a response: never answer one (no reflection loops)
  if (((flags >> 11) & 0xf) !== 0) return { rcode: RCODE.NOTIMP }; // only standard queries
  if (buf.readUInt16BE(4) !== 1) return { rcode: RCODE.FORMERR };
  let o = 12;
  let total = 0;
  for (;;) {
    if (o >= buf.length) return { rcode: RCODE.FORMERR };
    const len = buf[o] as number;
    if (len === 0) {
      o++;
      break;
    }
    if (len > 63) return { rcode: RCODE.FORMERR }; // a pointer has nothing to point at in a question
    total += len + 1;
    if (total > 255) return { rcode: RCODE.FORMERR };
    o += len + 1;
  }
  if (o + 4 > buf.length) return { rcode: RCODE.FORMERR };
  const qtype = buf.readUInt16BE(o);
  const qclass = buf.readUInt16BE(o + 2);
  const key = buf.toString('latin1', 12, o + 2).toLowerCase();
  const questionEnd = o + 4;
  o = questionEnd;
  const an = buf.readUInt16BE(6);
  const ns = buf.readUInt16BE(8);
  const ar = buf.readUInt16BE(10);
  let ednsSize: number | null = null;
  for (let i = 0; i < an + ns + ar; i++) {
    const start = o;
    o = skipName(buf, o);
    if (o < 0 || o + 10 > buf.length) return { rcode: RCODE.FORMERR };
    const type = buf.readUInt16BE(o);
    const rdlen = buf.readUInt16BE(o + 8);
    if (i >= an + ns && type === QTYPE.OPT && buf[start] === 0) {
      // RFC 6891 §6.2.5: sizes below 512 mean 512.
      ednsSize = Math.min(EDNS_MAX, Math.max(UDP_PLAIN_LIMIT, buf.readUInt16BE(o + 2)));
    }
    o += 10 + rdlen;
    if (o > buf.length) return { rcode: RCODE.FORMERR };
  }
  return { query: { id: buf.readUInt16BE(0), flags, key, qtype, qclass, questionEnd, ednsSize } };
}

function skipName(buf: Buffer, start: number): number {
  let o = start;
  for (let hops = 0; hops < 128; hops++) {
    if (o >= buf.length) return -1;
    const len = buf[o] as number;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2 <= buf.length ? o + 2 : -1;
    if (len > 63) return -1;
    o += len + 1;
  }
  return -1;
}

/**
 * The question's name in dotted form, lower-cased, without the trailing dot.
 *
 * @example
 * questionName(msg); // 'web.service.consul'
 */
export function questionName(buf: Buffer): string {
  const labels: string[] = [];
  let o = 12;
  while (o < buf.length && buf[o] !== 0) {
    const len = buf[o] as number;
    labels.push(buf.toString('latin1', o + 1, o + 1 + len));
    o += len + 1;
  }
  return labels.join('.').toLowerCase();
}

/**
 * The size a response to this query may have: 512 over plain UDP, the EDNS0 size over UDP with OPT, 64 KiB
 * over TCP.
 *
 * @example
 * sizeLimit(query, 'udp'); // 512
 */
export function sizeLimit(q: Query, transport: 'udp' | 'tcp'): number {
  if (transport === 'tcp') return TCP_LIMIT;
  return q.ednsSize ?? UDP_PLAIN_LIMIT;
}

const OPT_LEN = 11;

function writeOpt(out: Buffer, o: number): void {
  out[o] = 0; // root name
  out.writeUInt16BE(QTYPE.OPT, o + 1);
  out.writeUInt16BE(ADVERTISED_UDP_SIZE, o + 3);
  out.writeUInt32BE(0, o + 5); // extended RCODE 0, version 0, no flags
  out.writeUInt16BE(0, o + 9);
}

function writeHeader(
  out: Buffer,
  req: Buffer,
  q: Query,
  flags: number,
  an: number,
  ns: number,
  ar: number,
): void {
  req.copy(out, 0, 0, 2); // the ID
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(an, 6);
  out.writeUInt16BE(ns, 8);
  out.writeUInt16BE(ar, 10);
  req.copy(out, 12, 12, q.questionEnd); // the question exactly as asked (0x20 case randomisation survives)
}

/**
 * Builds the response to `req` from a plan: answers in a fresh random order (Fisher–Yates, Consul's documentation
 * §10.3), trimmed to `limit` bytes with TC set when an answer had to go (Phare fills the UDP size rather than
 * Consul's silent 3-record cut, §16). An answer's additional records stay with it; at least one answer is
 * kept when it fits on its own.
 *
 * @example
 * socket.send(assemble(msg, query, plan, sizeLimit(query, 'udp'), false), port, address);
 */
export function assemble(
  req: Buffer,
  q: Query,
  plan: AnswerPlan,
  limit: number,
  recursionAvailable: boolean,
): Buffer {
  const qlen = q.questionEnd - 12;
  const optLen = q.ednsSize === null ? 0 : OPT_LEN;
  const flagsBase = QR | AA | (q.flags & RD) | (recursionAvailable ? RA : 0) | plan.rcode;
  const units = plan.units;
  const n = units.length;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  const base = 12 + qlen + optLen;
  const full = base + plan.authority.length + plan.answersLength + plan.extras.length;
  if (full <= limit) {
    const out = Buffer.allocUnsafe(full);
    writeHeader(out, req, q, flagsBase, n, plan.authorityCount, plan.extraCount + (optLen ? 1 : 0));
    let o = 12 + qlen;
    for (let i = 0; i < n; i++) {
      const rr = (units[order[i] as number] as (typeof units)[number]).rr;
      rr.copy(out, o);
      o += rr.length;
    }
    plan.authority.copy(out, o);
    o += plan.authority.length;
    plan.extras.copy(out, o);
    o += plan.extras.length;
    if (optLen) writeOpt(out, o);
    return out;
  }
  // Trim: take whole units while they fit; the authority section (only on negative answers) goes first.
  let size = base;
  const answers: Buffer[] = [];
  const extras: Buffer[] = [];
  const seen = new Set<string>();
  let truncated = false;
  for (let i = 0; i < n; i++) {
    const u = units[order[i] as number] as (typeof units)[number];
    let extraLen = 0;
    const fresh = u.extras.filter((e) => !seen.has(e.key));
    for (const e of fresh) extraLen += e.rr.length;
    if (size + u.rr.length + extraLen <= limit) {
      answers.push(u.rr);
      for (const e of fresh) {
        seen.add(e.key);
        extras.push(e.rr);
      }
      size += u.rr.length + extraLen;
    } else {
      truncated = true;
      if (answers.length === 0 && size + u.rr.length <= limit) {
        answers.push(u.rr);
        size += u.rr.length;
      }
      break;
    }
  }
  if (n === 0) truncated = true; // only an oversized authority section can get here
  const out = Buffer.allocUnsafe(size);
  writeHeader(
    out,
    req,
    q,
    flagsBase | (truncated ? TC : 0),
    answers.length,
    0,
    extras.length + (optLen ? 1 : 0),
  );
  let o = 12 + qlen;
  for (const b of answers) {
    b.copy(out, o);
    o += b.length;
  }
  for (const b of extras) {
    b.copy(out, o);
    o += b.length;
  }
  if (optLen) writeOpt(out, o);
  return out;
}

/**
 * A response carrying only an RCODE (FORMERR, NOTIMP, REFUSED, SERVFAIL): the header of `req` with QR set,
 * and its question echoed when `q` says where it ends.
 *
 * @example
 * errorResponse(msg, RCODE.FORMERR, null);
 */
export function errorResponse(
  req: Buffer,
  rcode: number,
  q: Query | null,
  recursionAvailable = false,
): Buffer {
  const qlen = q ? q.questionEnd - 12 : 0;
  const optLen = q && q.ednsSize !== null ? OPT_LEN : 0;
  const out = Buffer.alloc(12 + qlen + optLen);
  const reqFlags = req.readUInt16BE(2);
  // Keep the opcode and RD bits of the query (RFC 1035 §4.1.1), set QR.
  const flags = QR | (reqFlags & 0x7800) | (reqFlags & RD) | (recursionAvailable ? RA : 0) | rcode;
  req.copy(out, 0, 0, 2);
  out.writeUInt16BE(flags, 2);
  if (q) {
    out.writeUInt16BE(1, 4);
    req.copy(out, 12, 12, q.questionEnd);
  }
  if (optLen) {
    out.writeUInt16BE(1, 10);
    writeOpt(out, 12 + qlen);
  }
  return out;
}
