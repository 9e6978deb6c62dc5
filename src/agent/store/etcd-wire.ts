/**
 * The two etcd RPCs on the cluster's hot path — `KV/Txn` (every write) and `Watch/Watch` (every agent's cache)
 * — sent over gRPC (`@grpc/grpc-js`, the transport etcd3 itself uses) with a protobuf codec of our own for
 * exactly the messages they carry. Everything else (leases, ranges, status, members) stays on etcd3.
 *
 * Why not etcd3 for these two: etcd3 decodes every message through protobufjs into generic objects and then
 * `toObject` copies with every int64 as a string (via long.js), and wraps each call in its own policies. A
 * watching agent paid that for every event of every agent's registration: 55 µs per registration against
 * 33 µs with this codec on the same grpc-js stream (BENCHMARKS.md, "Cluster over etcd", stop 12), times three
 * agents, plus the garbage. The codec reads only the fields Phare uses and skips the rest (unknown fields
 * included, as protobuf requires); `etcd-wire.test.ts` checks it against protobufjs on etcd's own .proto files.
 *
 * Wire format: https://protobuf.dev/programming-guides/encoding/ — varints, length-delimited fields.
 * int64 revisions fit a double (etcd's revisions stay far below 2^53); lease IDs do not (random 63-bit
 * values), so they travel as decimal strings and are coded through BigInt.
 */

/** A key-value as etcd's `mvccpb.KeyValue`, with the fields Phare reads. */
export interface WireKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** The lease ID as a decimal string; '0' when none. */
  lease: string;
}

/** One watch event: `put` or `del` (etcd's PUT / DELETE). */
export interface WireEvent {
  type: 'put' | 'del';
  kv: WireKv;
}

/** A decoded `WatchResponse`. */
export interface WireWatchResponse {
  revision: number;
  watchId: number;
  created: boolean;
  canceled: boolean;
  compactRevision: number;
  cancelReason: string;
  events: WireEvent[];
}

/** A decoded `TxnResponse`: `ranges[i]` holds the kvs of the i-th range op (empty for puts and deletes). */
export interface WireTxnResponse {
  revision: number;
  succeeded: boolean;
  ranges: WireKv[][];
}

/** One operation of a transaction. */
export type WireOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'del'; key: string; rangeEnd?: Buffer }
  | { type: 'range'; key: string; rangeEnd?: Buffer; keysOnly?: boolean };

/** One compare of a transaction, on the mod revision (the only target Phare guards on). */
export interface WireCompare {
  key: string;
  rangeEnd?: Buffer;
  result: 'equal' | 'less';
  modRevision: number;
}

// ------------------------------------------------------------------------------------------------ encoding

const WT_VARINT = 0;
const WT_LEN = 2;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function varint64Size(n: bigint): number {
  let size = 1;
  let v = BigInt.asUintN(64, n);
  while (v >= 128n) {
    v >>= 7n;
    size++;
  }
  return size;
}

/** A writer into one buffer whose size was computed beforehand. */
class Writer {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    while (n >= 128) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  varint64(n: bigint): void {
    let v = BigInt.asUintN(64, n);
    while (v >= 128n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }
  tag(field: number, wt: number): void {
    this.varint(field * 8 + wt);
  }
  bytes(field: number, b: Buffer): void {
    this.tag(field, WT_LEN);
    this.varint(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
  /** A string field of `len` UTF-8 bytes, written in place (no intermediate Buffer). */
  text(field: number, s: string, len: number): void {
    this.tag(field, WT_LEN);
    this.varint(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }
  done(): Buffer {
    if (this.pos !== this.buf.length)
      throw new Error(`etcd wire: wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

const tagSize = (field: number) => varintSize(field * 8);
const lenFieldSize = (field: number, len: number) => tagSize(field) + varintSize(len) + len;

interface SizedOp {
  op: WireOp;
  /** UTF-8 byte lengths of the key and (puts) the value. */
  keyLen: number;
  valueLen: number;
  lease?: bigint;
  inner: number;
}

function sizeOp(op: WireOp): SizedOp {
  const keyLen = Buffer.byteLength(op.key);
  let inner = lenFieldSize(1, keyLen);
  if (op.type === 'put') {
    const valueLen = Buffer.byteLength(op.value);
    inner += lenFieldSize(2, valueLen);
    const lease = op.lease !== undefined && op.lease !== '0' ? BigInt(op.lease) : undefined;
    if (lease !== undefined) inner += tagSize(3) + varint64Size(lease);
    return { op, keyLen, valueLen, ...(lease !== undefined ? { lease } : {}), inner };
  }
  if (op.rangeEnd) inner += lenFieldSize(2, op.rangeEnd.length);
  if (op.type === 'range' && op.keysOnly) inner += tagSize(8) + 1;
  return { op, keyLen, valueLen: 0, inner };
}

// RequestOp's oneof fields: request_range = 1, request_put = 2, request_delete_range = 3
const OP_FIELD = { range: 1, put: 2, del: 3 } as const;

function writeOp(w: Writer, s: SizedOp): void {
  w.tag(OP_FIELD[s.op.type], WT_LEN);
  w.varint(s.inner);
  w.text(1, s.op.key, s.keyLen);
  if (s.op.type === 'put') {
    w.text(2, s.op.value, s.valueLen);
    if (s.lease !== undefined) {
      w.tag(3, WT_VARINT);
      w.varint64(s.lease);
    }
    return;
  }
  if (s.op.rangeEnd) w.bytes(2, s.op.rangeEnd);
  if (s.op.type === 'range' && s.op.keysOnly) {
    w.tag(8, WT_VARINT);
    w.varint(1);
  }
}

interface SizedCompare {
  c: WireCompare;
  key: Buffer;
  inner: number;
}

// Compare: result = 1 (EQUAL 0, LESS 2), target = 2 (MOD 2), key = 3, mod_revision = 6, range_end = 64
function sizeCompare(c: WireCompare): SizedCompare {
  const key = Buffer.from(c.key);
  let inner = tagSize(1) + 1 + tagSize(2) + 1 + lenFieldSize(3, key.length);
  inner += tagSize(6) + varintSize(c.modRevision);
  if (c.rangeEnd) inner += lenFieldSize(64, c.rangeEnd.length);
  return { c, key, inner };
}

function writeCompare(w: Writer, s: SizedCompare): void {
  w.tag(1, WT_LEN);
  w.varint(s.inner);
  w.tag(1, WT_VARINT);
  w.varint(s.c.result === 'equal' ? 0 : 2);
  w.tag(2, WT_VARINT);
  w.varint(2);
  w.bytes(3, s.key);
  w.tag(6, WT_VARINT);
  w.varint(s.c.modRevision);
  if (s.c.rangeEnd) w.bytes(64, s.c.rangeEnd);
}

/**
 * Encodes a `TxnRequest` (compares, then the success ops; no failure ops).
 *
 * @example
 * const req = encodeTxn([], [{ type: 'put', key: '/phare/v1/head', value: '' }]);
 */
export function encodeTxn(compares: readonly WireCompare[], success: readonly WireOp[]): Buffer {
  const cs = compares.map(sizeCompare);
  const ops = success.map(sizeOp);
  let size = 0;
  for (const c of cs) size += lenFieldSize(1, c.inner);
  const opLen = (s: SizedOp) => tagSize(OP_FIELD[s.op.type]) + varintSize(s.inner) + s.inner;
  for (const s of ops) size += lenFieldSize(2, opLen(s));
  const w = new Writer(size);
  for (const c of cs) writeCompare(w, c);
  for (const s of ops) {
    w.tag(2, WT_LEN);
    w.varint(opLen(s));
    writeOp(w, s);
  }
  return w.done();
}

/**
 * Encodes a `WatchRequest` creating a watch on [key, rangeEnd) from `startRevision`.
 *
 * @example
 * const req = encodeWatchCreate('/phare/v1/', prefixEnd('/phare/v1/'), 42);
 */
export function encodeWatchCreate(key: string, rangeEnd: Buffer, startRevision: number): Buffer {
  const k = Buffer.from(key);
  const inner =
    lenFieldSize(1, k.length) +
    lenFieldSize(2, rangeEnd.length) +
    (startRevision > 0 ? tagSize(3) + varintSize(startRevision) : 0);
  const w = new Writer(lenFieldSize(1, inner));
  w.tag(1, WT_LEN);
  w.varint(inner);
  w.bytes(1, k);
  w.bytes(2, rangeEnd);
  if (startRevision > 0) {
    w.tag(3, WT_VARINT);
    w.varint(startRevision);
  }
  return w.done();
}

// ------------------------------------------------------------------------------------------------ decoding

/** A reader over `buf[pos, end)`. Throws on truncated input (a frame grpc-js handed over whole). */
class Reader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;
  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }
  more(): boolean {
    return this.pos < this.end;
  }
  /** A varint as a double: exact below 2^53 (revisions, lengths, tags). */
  varint(): number {
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('etcd wire: truncated varint');
      const b = this.buf[this.pos++] as number;
      x += (b & 0x7f) * mul;
      if (b < 0x80) return x;
      mul *= 128;
    }
    throw new Error('etcd wire: varint longer than 10 bytes');
  }
  /** A varint as an exact unsigned 64-bit decimal string, read as int64 (lease IDs). */
  varint64(): string {
    let x = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('etcd wire: truncated varint');
      const b = this.buf[this.pos++] as number;
      x |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, x).toString();
      shift += 7n;
    }
    throw new Error('etcd wire: varint longer than 10 bytes');
  }
  /** A length-delimited field: returns its end and leaves pos at its start. */
  len(): number {
    const n = this.varint();
    const e = this.pos + n;
    if (e > this.end) throw new Error('etcd wire: truncated field');
    return e;
  }
  skip(wt: number): void {
    if (wt === WT_VARINT) this.varint();
    else if (wt === WT_LEN) this.pos = this.len();
    else if (wt === 1) this.pos += 8;
    else if (wt === 5) this.pos += 4;
    else throw new Error(`etcd wire: unsupported wire type ${wt}`);
    if (this.pos > this.end) throw new Error('etcd wire: truncated field');
  }
}

function readKv(r: Reader, end: number): WireKv {
  const kv: WireKv = { key: '', value: '', createRevision: 0, modRevision: 0, lease: '0' };
  while (r.pos < end) {
    const tag = r.varint();
    const f = Math.floor(tag / 8);
    const wt = tag % 8;
    if (wt === WT_LEN && (f === 1 || f === 5)) {
      const e = r.len();
      const s = r.buf.toString('utf8', r.pos, e);
      if (f === 1) kv.key = s;
      else kv.value = s;
      r.pos = e;
    } else if (wt === WT_VARINT && f === 2) kv.createRevision = r.varint();
    else if (wt === WT_VARINT && f === 3) kv.modRevision = r.varint();
    else if (wt === WT_VARINT && f === 6) kv.lease = r.varint64();
    else r.skip(wt);
  }
  return kv;
}

/** ResponseHeader.revision (field 3) of a header spanning to `end`. */
function readHeaderRevision(r: Reader, end: number): number {
  let revision = 0;
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === 3 * 8 + WT_VARINT) revision = r.varint();
    else r.skip(tag % 8);
  }
  return revision;
}

/**
 * Decodes a `WatchResponse`.
 *
 * @example
 * const res = decodeWatchResponse(frame);
 * for (const ev of res.events) console.log(ev.type, ev.kv.key, ev.kv.modRevision);
 */
export function decodeWatchResponse(buf: Buffer): WireWatchResponse {
  const r = new Reader(buf);
  const res: WireWatchResponse = {
    revision: 0,
    watchId: 0,
    created: false,
    canceled: false,
    compactRevision: 0,
    cancelReason: '',
    events: [],
  };
  while (r.more()) {
    const tag = r.varint();
    const f = Math.floor(tag / 8);
    const wt = tag % 8;
    if (wt === WT_VARINT) {
      const v = r.varint();
      if (f === 2) res.watchId = v;
      else if (f === 3) res.created = v !== 0;
      else if (f === 4) res.canceled = v !== 0;
      else if (f === 5) res.compactRevision = v;
    } else if (wt === WT_LEN && f === 1) {
      res.revision = readHeaderRevision(r, r.len());
    } else if (wt === WT_LEN && f === 6) {
      const e = r.len();
      res.cancelReason = r.buf.toString('utf8', r.pos, e);
      r.pos = e;
    } else if (wt === WT_LEN && f === 11) {
      const e = r.len();
      let type: 'put' | 'del' = 'put';
      let kv: WireKv | undefined;
      while (r.pos < e) {
        const t = r.varint();
        const ff = Math.floor(t / 8);
        if (ff === 1 && t % 8 === WT_VARINT) type = r.varint() === 1 ? 'del' : 'put';
        else if (ff === 2 && t % 8 === WT_LEN) kv = readKv(r, r.len());
        else r.skip(t % 8);
      }
      res.events.push({
        type,
        kv: kv ?? { key: '', value: '', createRevision: 0, modRevision: 0, lease: '0' },
      });
    } else r.skip(wt);
  }
  return res;
}

/**
 * Decodes a `TxnResponse`: its revision, whether the compares held, and the kvs of each range op.
 *
 * @example
 * const { revision, succeeded } = decodeTxnResponse(frame);
 */
export function decodeTxnResponse(buf: Buffer): WireTxnResponse {
  const r = new Reader(buf);
  const res: WireTxnResponse = { revision: 0, succeeded: false, ranges: [] };
  while (r.more()) {
    const tag = r.varint();
    const f = Math.floor(tag / 8);
    const wt = tag % 8;
    if (wt === WT_LEN && f === 1) res.revision = readHeaderRevision(r, r.len());
    else if (wt === WT_VARINT && f === 2) res.succeeded = r.varint() !== 0;
    else if (wt === WT_LEN && f === 3) {
      // ResponseOp: response_range = 1 (RangeResponse: kvs = 2); puts and deletes carry nothing we read
      const e = r.len();
      const kvs: WireKv[] = [];
      while (r.pos < e) {
        const t = r.varint();
        if (t === 1 * 8 + WT_LEN) {
          const re = r.len();
          while (r.pos < re) {
            const tt = r.varint();
            if (tt === 2 * 8 + WT_LEN) kvs.push(readKv(r, r.len()));
            else r.skip(tt % 8);
          }
        } else r.skip(t % 8);
      }
      res.ranges.push(kvs);
    } else r.skip(wt);
  }
  return res;
}
