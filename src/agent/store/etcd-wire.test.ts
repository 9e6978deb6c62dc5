/**
 * The hand codec of etcd-wire.ts against the codec etcd3 uses (@grpc/proto-loader over etcd's own .proto files,
 * shipped in etcd3): what we encode decodes there to what we meant, and what it encodes (random messages,
 * 64-bit IDs, UTF-8, empty and large values, fields we do not read) decodes here to the same values.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { seededRandom } from '../../../test/helpers/random.ts';
import {
  decodeTxnResponse,
  decodeWatchResponse,
  encodeTxn,
  encodeWatchCreate,
  type WireCompare,
  type WireOp,
} from './etcd-wire.ts';

const require = createRequire(import.meta.url);
const etcd3Main = require.resolve('etcd3');
const fromEtcd3 = createRequire(etcd3Main);
const protoLoader = fromEtcd3('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
const protoDir = join(dirname(etcd3Main), '..', 'proto');
// etcd3's own loader options (lib/connection-pool.js)
const pkg = protoLoader.loadSync(join(protoDir, 'rpc.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
// biome-ignore lint/suspicious/noExplicitAny: proto-loader's method definitions are untyped here
const method = (service: string, name: string) => (pkg[`etcdserverpb.${service}`] as any)[name];
const Txn = method('KV', 'Txn');
const Watch = method('Watch', 'Watch');

const ALPHABET = ['a', 'z', '/', '%2F', '\u0000', 'é', '日本', '🙂', '-', '_', '0'];
function text(r: () => number, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}
const revision = (r: () => number) => Math.floor(r() * 2 ** (1 + Math.floor(r() * 52)));
const lease = (r: () => number) =>
  BigInt.asIntN(
    64,
    (BigInt(Math.floor(r() * 2 ** 32)) << 31n) | BigInt(Math.floor(r() * 2 ** 31)),
  ).toString();

test('etcd wire: TxnRequest encodes to what etcd3 decodes (2,000 random transactions)', () => {
  const r = seededRandom(12);
  for (let n = 0; n < 2000; n++) {
    const compares: WireCompare[] = [];
    const ops: WireOp[] = [];
    for (let i = Math.floor(r() * 4); i > 0; i--) {
      const c: WireCompare = {
        key: text(r, 20),
        result: r() < 0.5 ? 'equal' : 'less',
        modRevision: revision(r),
      };
      if (r() < 0.3) c.rangeEnd = Buffer.from(text(r, 10));
      compares.push(c);
    }
    for (let i = Math.floor(r() * 6); i > 0; i--) {
      const kind = r();
      if (kind < 0.5) {
        const op: WireOp = {
          type: 'put',
          key: text(r, 30),
          value: r() < 0.05 ? 'x'.repeat(70_000) : text(r, 200),
        };
        if (r() < 0.3) op.lease = lease(r);
        ops.push(op);
      } else if (kind < 0.8) {
        ops.push(
          r() < 0.5
            ? { type: 'del', key: text(r, 30) }
            : { type: 'del', key: text(r, 30), rangeEnd: Buffer.from(text(r, 5)) },
        );
      } else {
        ops.push({
          type: 'range',
          key: text(r, 30),
          ...(r() < 0.5 ? { rangeEnd: Buffer.from(text(r, 5)) } : {}),
          ...(r() < 0.5 ? { keysOnly: true } : {}),
        });
      }
    }
    const got = Txn.requestDeserialize(encodeTxn(compares, ops));
    assert.equal(got.compare.length, compares.length, `case ${n}`);
    compares.forEach((c, i) => {
      const g = got.compare[i];
      assert.equal(g.key.toString(), c.key, `case ${n} compare ${i} key`);
      assert.equal(g.target, 'Mod');
      assert.equal(g.result, c.result === 'equal' ? 'Equal' : 'Less');
      assert.equal(g.mod_revision, String(c.modRevision), `case ${n} compare ${i} revision`);
      assert.equal(g.range_end.toString(), c.rangeEnd?.toString() ?? '');
    });
    assert.equal(got.success.length, ops.length);
    assert.deepEqual(got.failure, []);
    ops.forEach((op, i) => {
      const g = got.success[i];
      if (op.type === 'put') {
        assert.equal(g.request, 'request_put');
        assert.equal(g.request_put.key.toString(), op.key);
        assert.equal(g.request_put.value.toString(), op.value);
        assert.equal(g.request_put.lease, op.lease ?? '0', `case ${n} op ${i} lease`);
      } else if (op.type === 'del') {
        assert.equal(g.request, 'request_delete_range');
        assert.equal(g.request_delete_range.key.toString(), op.key);
        assert.equal(g.request_delete_range.range_end.toString(), op.rangeEnd?.toString() ?? '');
      } else {
        assert.equal(g.request, 'request_range');
        assert.equal(g.request_range.key.toString(), op.key);
        assert.equal(g.request_range.range_end.toString(), op.rangeEnd?.toString() ?? '');
        assert.equal(g.request_range.keys_only, op.keysOnly === true);
      }
    });
  }
});

test('etcd wire: WatchCreateRequest encodes to what etcd3 decodes', () => {
  for (const [key, end, rev] of [
    ['/phare/v1/', '/phare/v10', 1],
    ['/p/kv/v1/', '/p/kv/v10', 2 ** 40 + 3],
    ['', '\u0000', 0],
  ] as const) {
    const got = Watch.requestDeserialize(encodeWatchCreate(key, Buffer.from(end), rev));
    assert.equal(got.request_union, 'create_request');
    assert.equal(got.create_request.key.toString(), key);
    assert.equal(got.create_request.range_end.toString(), end);
    assert.equal(got.create_request.start_revision, String(rev));
  }
});

function randomKv(r: () => number) {
  return {
    key: Buffer.from(text(r, 30)),
    create_revision: String(revision(r)),
    mod_revision: String(revision(r)),
    version: String(revision(r)),
    value: Buffer.from(r() < 0.05 ? 'v'.repeat(600_000) : text(r, 300)),
    lease: r() < 0.5 ? '0' : lease(r),
  };
}
const header = (r: () => number) => ({
  cluster_id: BigInt.asUintN(64, BigInt(lease(r))).toString(),
  member_id: BigInt.asUintN(64, BigInt(lease(r))).toString(),
  revision: String(revision(r)),
  raft_term: String(revision(r)),
});
function sameKv(
  got: ReturnType<typeof decodeTxnResponse>['ranges'][number][number],
  want: ReturnType<typeof randomKv>,
  what: string,
) {
  assert.equal(got.key, want.key.toString(), `${what} key`);
  assert.equal(got.value, want.value.toString(), `${what} value`);
  assert.equal(got.createRevision, Number(want.create_revision), `${what} create`);
  assert.equal(got.modRevision, Number(want.mod_revision), `${what} mod`);
  assert.equal(got.lease, want.lease, `${what} lease`);
}

test("etcd wire: TxnResponse from etcd3's encoder decodes to the same values (1,000 random)", () => {
  const r = seededRandom(7);
  for (let n = 0; n < 1000; n++) {
    const ops = Array.from({ length: Math.floor(r() * 5) }, () => {
      const kind = r();
      if (kind < 0.4)
        return { kind: 'range', kvs: Array.from({ length: Math.floor(r() * 4) }, () => randomKv(r)) };
      return { kind: kind < 0.7 ? 'put' : 'del', kvs: [] };
    });
    const h = header(r);
    const msg = {
      header: h,
      succeeded: r() < 0.5,
      responses: ops.map((o) =>
        o.kind === 'range'
          ? { response_range: { header: h, kvs: o.kvs, more: r() < 0.5, count: String(o.kvs.length) } }
          : o.kind === 'put'
            ? { response_put: { header: h, prev_kv: r() < 0.5 ? randomKv(r) : undefined } }
            : { response_delete_range: { header: h, deleted: '3', prev_kvs: [randomKv(r)] } },
      ),
    };
    const got = decodeTxnResponse(Txn.responseSerialize(msg));
    assert.equal(got.revision, Number(h.revision), `case ${n}`);
    assert.equal(got.succeeded, msg.succeeded);
    assert.equal(got.ranges.length, ops.length);
    ops.forEach((o, i) => {
      assert.equal(got.ranges[i]?.length, o.kvs.length, `case ${n} op ${i}`);
      o.kvs.forEach((kv, j) => {
        sameKv(got.ranges[i]?.[j] as never, kv, `case ${n} op ${i} kv ${j}`);
      });
    });
  }
});

test("etcd wire: WatchResponse from etcd3's encoder decodes to the same values (1,000 random), unknown fields skipped", () => {
  const r = seededRandom(99);
  for (let n = 0; n < 1000; n++) {
    const events = Array.from({ length: Math.floor(r() * 6) }, () => ({
      type: r() < 0.7 ? 'Put' : 'Delete',
      kv: randomKv(r),
      prev_kv: r() < 0.3 ? randomKv(r) : undefined,
    }));
    const msg = {
      header: header(r),
      watch_id: String(Math.floor(r() * 100)),
      created: r() < 0.2,
      canceled: r() < 0.2,
      compact_revision: String(r() < 0.3 ? revision(r) : 0),
      cancel_reason: r() < 0.3 ? text(r, 40) : '',
      fragment: r() < 0.2,
      events,
    };
    let buf: Buffer = Watch.responseSerialize(msg);
    // a field this version of etcd does not send (numbers 15, a varint, and 16, bytes: a two-byte tag): skipped, as protobuf requires
    if (n % 3 === 0)
      buf = Buffer.concat([buf, Buffer.from([15 << 3, 0x96, 0x01, 0x82, 0x01, 2, 0x61, 0x62])]);
    const got = decodeWatchResponse(buf);
    assert.equal(got.revision, Number(msg.header.revision), `case ${n}`);
    assert.equal(got.watchId, Number(msg.watch_id));
    assert.equal(got.created, msg.created);
    assert.equal(got.canceled, msg.canceled);
    assert.equal(got.compactRevision, Number(msg.compact_revision));
    assert.equal(got.cancelReason, msg.cancel_reason);
    assert.equal(got.events.length, events.length);
    events.forEach((e, i) => {
      assert.equal(got.events[i]?.type, e.type === 'Put' ? 'put' : 'del');
      sameKv(got.events[i]?.kv as never, e.kv, `case ${n} event ${i}`);
    });
  }
});

test('etcd wire: truncated input is an error, never a wrong answer', () => {
  const full: Buffer = Watch.responseSerialize({
    header: { revision: '5' },
    events: [
      { type: 'Put', kv: { key: Buffer.from('/k'), value: Buffer.from('{"a":1}'), mod_revision: '5' } },
    ],
  });
  for (let cut = 1; cut < full.length; cut++) {
    const part = full.subarray(0, cut);
    let decoded: ReturnType<typeof decodeWatchResponse> | undefined;
    try {
      decoded = decodeWatchResponse(part);
    } catch (err) {
      assert.match(String(err), /etcd wire: truncated/);
      continue;
    }
    // a cut exactly between fields is a shorter, valid message: it may only lack the event, never alter it
    for (const ev of decoded.events) assert.equal(ev.kv.value, '{"a":1}');
  }
});
