import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from 'dns-packet';
import { type AnswerUnit, encodeRR, RCODE, serviceTtlLookup } from './records.ts';
import { assemble, errorResponse, parseQuery, questionName, sizeLimit } from './wire.ts';

function query(name: string, type: 'A' | 'SRV', edns?: number): Buffer {
  return encode({
    type: 'query',
    id: 4242,
    flags: 1 << 8,
    questions: [{ type, name, class: 'IN' }],
    additionals: edns ? [{ type: 'OPT', name: '.', udpPayloadSize: edns, options: [] } as never] : [],
  });
}

/** The RCODE bits of a response header (the dns-packet types do not expose `rcode`). */
const rcodeOf = (b: Buffer) => (b[3] as number) & 0xf;

function aUnit(i: number): AnswerUnit {
  const rr = encodeRR({ type: 'A', name: '.', ttl: 0, data: `10.0.${i >> 8}.${i & 255}` });
  return { rr: Buffer.concat([Buffer.from([0xc0, 0x0c]), rr.subarray(1)]), extras: [] };
}

function plan(units: AnswerUnit[]) {
  return {
    rcode: 0,
    units,
    answersLength: units.reduce((n, u) => n + u.rr.length, 0),
    authority: Buffer.alloc(0),
    authorityCount: 0,
    extras: Buffer.alloc(0),
    extraCount: 0,
    topics: [],
  };
}

test('parseQuery reads the question, case-folded key and EDNS size', () => {
  const r = parseQuery(query('Web.Service.Consul', 'SRV', 1232));
  assert.ok(r.query);
  assert.equal(r.query.id, 4242);
  assert.equal(r.query.qtype, 33);
  assert.equal(r.query.ednsSize, 1232);
  assert.equal(r.query.key, parseQuery(query('web.service.consul', 'SRV'))?.query?.key);
  assert.equal(questionName(query('Web.Service.Consul', 'A')), 'web.service.consul');
  assert.equal(parseQuery(query('a.b', 'A', 100)).query?.ednsSize, 512, 'sizes below 512 mean 512');
});

test('parseQuery: silence without a header or for responses, FORMERR/NOTIMP otherwise', () => {
  assert.deepEqual(parseQuery(Buffer.alloc(5)), { rcode: null });
  const resp = query('a.b', 'A');
  resp[2] = (resp[2] as number) | 0x80;
  assert.deepEqual(parseQuery(resp), { rcode: null });
  const truncated = query('web.service.consul', 'A').subarray(0, 20);
  assert.deepEqual(parseQuery(truncated), { rcode: RCODE.FORMERR });
  const twoQuestions = query('a.b', 'A');
  twoQuestions.writeUInt16BE(2, 4);
  assert.deepEqual(parseQuery(twoQuestions), { rcode: RCODE.FORMERR });
  const notify = query('a.b', 'A');
  notify[2] = ((notify[2] as number) & 0x87) | (4 << 3);
  assert.deepEqual(parseQuery(notify), { rcode: RCODE.NOTIMP });
  const pointer = Buffer.from(query('a.b', 'A'));
  pointer[12] = 0xc0;
  assert.deepEqual(parseQuery(pointer), { rcode: RCODE.FORMERR });
});

test('assemble fills 512 bytes over plain UDP and sets TC; TCP gets everything', () => {
  const req = query('big.service.consul', 'A');
  const q = parseQuery(req).query;
  assert.ok(q);
  const p = plan(Array.from({ length: 60 }, (_, i) => aUnit(i)));
  const udp = assemble(req, q, p, sizeLimit(q, 'udp'), false);
  assert.ok(udp.length <= 512);
  const du = decode(udp);
  assert.equal(du.flag_tc, true);
  assert.equal(du.id, 4242);
  assert.ok((du.answers?.length ?? 0) >= 25, 'compressed owner names let ~29 A records fit');
  const tcp = decode(assemble(req, q, p, sizeLimit(q, 'tcp'), false));
  assert.equal(tcp.flag_tc, false);
  assert.equal(tcp.answers?.length, 60);
  assert.equal(tcp.answers?.[0]?.name, 'big.service.consul');
});

test('assemble shuffles on every call', () => {
  const req = query('big.service.consul', 'A');
  const q = parseQuery(req).query;
  assert.ok(q);
  const p = plan(Array.from({ length: 20 }, (_, i) => aUnit(i)));
  const orders = new Set<string>();
  for (let i = 0; i < 10; i++) {
    orders.add(
      JSON.stringify(
        decode(assemble(req, q, p, 65535, false)).answers?.map((a) => (a as { data: unknown }).data),
      ),
    );
  }
  assert.ok(orders.size > 1);
});

test('errorResponse echoes the ID, opcode, RD and question', () => {
  const req = query('x.y', 'A', 1232);
  const q = parseQuery(req).query;
  const d = decode(errorResponse(req, RCODE.REFUSED, q ?? null));
  assert.equal(d.id, 4242);
  assert.equal(rcodeOf(errorResponse(req, RCODE.REFUSED, q ?? null)), RCODE.REFUSED);
  assert.equal(d.flag_rd, true);
  assert.equal(d.questions?.[0]?.name, 'x.y');
  assert.equal(d.additionals?.[0]?.type, 'OPT');
  const bare = decode(errorResponse(Buffer.alloc(12, 1), RCODE.FORMERR, null));
  assert.equal(rcodeOf(errorResponse(Buffer.alloc(12, 1), RCODE.FORMERR, null)), RCODE.FORMERR);
  assert.equal(bare.type, 'response');
});

test('service TTL: exact wins, then the longest prefix, then *', () => {
  const ttl = serviceTtlLookup({ '*': 5, 'web*': 30, 'web-a*': 40, web: 60 });
  assert.equal(ttl('web'), 60);
  assert.equal(ttl('web-api'), 40);
  assert.equal(ttl('webby'), 30);
  assert.equal(ttl('db'), 5);
  assert.equal(serviceTtlLookup({})('db'), 0);
});
