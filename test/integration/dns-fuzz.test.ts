/**
 * Fuzzing the DNS server with random and mutated packets over UDP and TCP. The server must never crash
 * or stall: every reply it sends decodes, and valid queries keep being answered. The PRNG is seeded so a
 * failure replays (set DNS_FUZZ_SEED to try others).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { decode, encode, type RecordType } from 'dns-packet';
import { pino } from 'pino';
import { Catalog } from '../../src/agent/catalog/index.ts';
import { createDnsServer, type DnsServer } from '../../src/agent/dns/index.ts';
import { createMemoryStore } from '../../src/agent/store/index.ts';
import { seededRandom } from '../helpers/random.ts';

const SEED = Number(process.env.DNS_FUZZ_SEED ?? 0x5eed);

const NAMES = [
  'web.service.consul',
  '_web._tcp.service.consul',
  'n1.node.consul',
  'consul',
  'x.query.consul',
  'a.b',
];
const TYPES = ['A', 'AAAA', 'SRV', 'ANY', 'TXT', 'SOA', 'NS'] as const;

function validQuery(id: number, rnd: () => number): Buffer {
  const name = NAMES[Math.floor(rnd() * NAMES.length)] as string;
  const type = TYPES[Math.floor(rnd() * TYPES.length)] as (typeof TYPES)[number];
  return encode({
    type: 'query',
    id,
    flags: 1 << 8,
    questions: [{ type: type as RecordType, name }], // the types omit ANY; dns-packet encodes it
    additionals:
      rnd() < 0.5
        ? [{ type: 'OPT', name: '.', udpPayloadSize: Math.floor(rnd() * 5000), options: [] } as never]
        : [],
  });
}

/** Random bytes, or a valid query with bytes flipped, cut, extended or counts rewritten. */
function fuzzPacket(rnd: () => number): Buffer {
  const kind = rnd();
  if (kind < 0.25) {
    const b = Buffer.alloc(Math.floor(rnd() * 80));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
    return b;
  }
  const b = Buffer.from(validQuery(Math.floor(rnd() * 65536), rnd));
  if (kind < 0.5) {
    const flips = 1 + Math.floor(rnd() * 6);
    for (let i = 0; i < flips; i++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    return b;
  }
  if (kind < 0.65) return b.subarray(0, Math.floor(rnd() * b.length));
  if (kind < 0.8) {
    // header counts that lie about the sections
    for (const off of [4, 6, 8, 10]) if (rnd() < 0.5) b.writeUInt16BE(Math.floor(rnd() * 65536), off);
    return b;
  }
  if (kind < 0.9) {
    // a label length pointing past the end, or a compression pointer loop in the question
    b[12] = rnd() < 0.5 ? 0xc0 : 63;
    b[13] = 12;
    return b;
  }
  const tail = Buffer.alloc(Math.floor(rnd() * 600));
  for (let i = 0; i < tail.length; i++) tail[i] = Math.floor(rnd() * 256);
  return Buffer.concat([b, tail]);
}

let catalog: Catalog;
let dns: DnsServer;
let port: number;
let errors = 0;

before(async () => {
  catalog = await Catalog.open({
    store: createMemoryStore(),
    node: { name: 'n1', id: 'x', address: '127.0.0.1' },
    datacenter: 'dc1',
  });
  await catalog.registerService(
    {
      id: 'web-1',
      name: 'web',
      kind: '',
      tags: [],
      address: '',
      port: 80,
      meta: {},
      weights: { Passing: 1, Warning: 1 },
      enableTagOverride: false,
    },
    [],
  );
  // Count error logs: an exception inside the server shows up here even though it answers SERVFAIL.
  const logger = pino({ level: 'error', hooks: { logMethod: () => void errors++ } });
  dns = createDnsServer({ catalog, logger, domain: 'consul', datacenter: 'dc1' });
  port = (await dns.listen({ host: '127.0.0.1', port: 0 })).port;
});
after(() => dns.close());

/** Sends one valid query over UDP and waits for its answer (generous timeout, loaded CI boxes). */
function udpAsk(id: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no answer to query ${id}`));
    }, 5000);
    s.on('message', (m) => {
      if (m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      s.close();
      resolve(m);
    });
    s.send(
      encode({ type: 'query', id, questions: [{ type: 'A', name: 'web.service.consul' }] }),
      port,
      '127.0.0.1',
    );
  });
}

test('UDP: 3000 random and mutated packets, every reply decodes, valid queries still answer', async () => {
  const rnd = seededRandom(SEED);
  const s = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  s.on('message', (m) => replies.push(m));
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  for (let batch = 0; batch < 30; batch++) {
    for (let i = 0; i < 100; i++) s.send(fuzzPacket(rnd), port, '127.0.0.1');
    // pace the batches so the kernel buffer does not drop the check query
    const answer = await udpAsk(60000 + batch);
    assert.equal(decode(answer).answers?.length, 1);
  }
  s.close();
  assert.ok(replies.length > 0);
  for (const r of replies) {
    assert.ok(r.length >= 12);
    assert.equal((r[2] as number) & 0x80, 0x80, 'QR set on every reply');
    if ((r[3] as number) % 16 !== 1) decode(r); // anything but a bare FORMERR header must fully decode
  }
  assert.equal(errors, 0, 'no exception inside the server');
});

test('TCP: garbage frames, lying lengths and dropped connections do not stall the server', async () => {
  const rnd = seededRandom(SEED + 1);
  const conns: Promise<void>[] = [];
  for (let c = 0; c < 40; c++) {
    conns.push(
      new Promise<void>((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        sock.resume(); // read (and drop) the replies, or a half-closed socket never sees the server's FIN
        sock.on('connect', () => {
          for (let i = 0; i < 10; i++) {
            const p = fuzzPacket(rnd);
            const len = Buffer.alloc(2);
            // sometimes the length prefix lies (longer than what follows: the server must wait, not choke)
            len.writeUInt16BE(rnd() < 0.2 ? Math.floor(rnd() * 65536) : p.length);
            sock.write(Buffer.concat([len, p]));
          }
          if (rnd() < 0.5) sock.destroy();
          else setTimeout(() => sock.end(), 20);
        });
      }),
    );
  }
  await Promise.all(conns);
  // A fresh TCP connection still gets a full answer, and UDP still answers.
  const sock = net.connect(port, '127.0.0.1');
  const q = encode({ type: 'query', id: 99, questions: [{ type: 'SRV', name: 'web.service.consul' }] });
  const reply = await new Promise<Buffer>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no TCP answer')), 5000);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.write(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]));
  });
  sock.destroy();
  assert.equal(decode(reply).id, 99);
  assert.equal(decode(reply).answers?.length, 1);
  assert.equal(decode(await udpAsk(100)).answers?.length, 1);
  assert.equal(errors, 0);
});
