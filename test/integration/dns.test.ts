/**
 * The agent's DNS interface against real clients: `dig` (bind9-dnsutils) for every name form and type,
 * Node's `dns.promises.Resolver`, raw sockets for the edges. Each test builds its catalog directly.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { decode, encode } from 'dns-packet';
import { pino } from 'pino';
import type { CheckInput, ServiceInput } from '../../src/agent/catalog/index.ts';
import { Catalog } from '../../src/agent/catalog/index.ts';
import { createDnsServer, type DnsServerOptions } from '../../src/agent/dns/index.ts';
import { createMemoryStore } from '../../src/agent/store/index.ts';

const run = promisify(execFile);
const logger = pino({ level: 'silent' });

interface DigResult {
  status: string;
  flags: string[];
  answer: string[][];
  authority: string[][];
  additional: string[][];
  question: string;
  size: number;
}

/** Runs dig (asynchronously: the server lives in this process) and splits its output into sections. */
async function dig(port: number, name: string, type: string, ...opts: string[]): Promise<DigResult> {
  const { stdout } = await run(
    'dig',
    ['@127.0.0.1', '-p', String(port), name, type, '+time=3', '+tries=1', ...opts],
    {
      timeout: 15_000,
    },
  );
  const res: DigResult = {
    status: '',
    flags: [],
    answer: [],
    authority: [],
    additional: [],
    question: '',
    size: 0,
  };
  let section: 'answer' | 'authority' | 'additional' | 'question' | null = null;
  for (const line of stdout.split('\n')) {
    const status = /status: (\w+)/.exec(line);
    if (status) res.status = status[1] as string;
    const flags = /^;; flags: ([^;]*);/.exec(line);
    if (flags) res.flags = (flags[1] as string).trim().split(/\s+/);
    const size = /MSG SIZE\s+rcvd: (\d+)/.exec(line);
    if (size) res.size = Number(size[1]);
    if (line.startsWith(';; ANSWER SECTION')) section = 'answer';
    else if (line.startsWith(';; AUTHORITY SECTION')) section = 'authority';
    else if (line.startsWith(';; ADDITIONAL SECTION')) section = 'additional';
    else if (line.startsWith(';; QUESTION SECTION')) section = 'question';
    else if (line.trim() === '' || line.startsWith(';; ')) section = null;
    else if (section === 'question') res.question = line.slice(1).split(/\s+/)[0] as string;
    else if (section) res[section].push(line.split(/\s+/));
  }
  return res;
}

/** The data fields of answer lines (`name ttl IN TYPE data...`). */
const data = (rows: string[][]) => rows.map((r) => r.slice(4).join(' ')).sort();

const weights = { Passing: 1, Warning: 1 };
function svc(id: string, name: string, address: string, port: number, tags: string[] = []): ServiceInput {
  return { id, name, kind: '', tags, address, port, meta: {}, weights, enableTagOverride: false };
}
function chk(checkId: string, serviceId: string, status: 'passing' | 'warning' | 'critical' = 'passing') {
  return {
    checkId,
    name: checkId,
    notes: '',
    serviceId,
    status,
    def: {
      type: '' as const,
      successBeforePassing: 0,
      failuresBeforeWarning: 0,
      failuresBeforeCritical: 0,
      outputMaxSize: 4096,
    },
  } satisfies CheckInput;
}

async function setup(extra: Partial<DnsServerOptions> = {}) {
  const catalog = await Catalog.open({
    store: createMemoryStore(),
    node: { name: 'n1', id: 'x', address: '127.0.0.1' },
    datacenter: 'dc1',
  });
  await catalog.registerService(svc('web-1', 'web', '', 8080, ['v1']), [chk('web-1-check', 'web-1')]);
  await catalog.registerService(svc('web-2', 'web', '10.0.0.2', 8081, ['v2', 'blue.green']), []);
  await catalog.registerService(svc('web-3', 'web', 'fe80::1', 8082), []);
  await catalog.catalogRegister({
    node: { id: 'n2', node: 'n2', address: '10.0.0.9', taggedAddresses: {}, meta: { rack: 'r1' } },
    service: { ...svc('api-1', 'api', '', 9000), weights: { Passing: 10, Warning: 3 } },
    checks: [chk('api-1-check', 'api-1')],
  });
  for (let i = 0; i < 40; i++) {
    await catalog.catalogRegister({
      node: { id: `b${i}`, node: `big-${i}`, address: `10.1.0.${i + 1}`, taggedAddresses: {}, meta: {} },
      service: svc(`big-${i}`, 'big', '', 7000 + i),
      checks: [],
    });
  }
  const dns = createDnsServer({ catalog, logger, domain: 'consul', datacenter: 'dc1', ...extra });
  const { port } = await dns.listen({ host: '127.0.0.1', port: 0 });
  return { catalog, dns, port };
}

describe('dns: dig against every name form and type', () => {
  let ctx: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    ctx = await setup({ serviceTtlSec: { 'we*': 30, api: 10, '*': 5 }, nodeTtlSec: 7 });
  });
  after(() => ctx.dns.close());

  test('A: one record per healthy instance address, authoritative', async () => {
    const r = await dig(ctx.port, 'web.service.consul', 'A');
    assert.equal(r.status, 'NOERROR');
    assert.ok(r.flags.includes('aa'));
    assert.deepEqual(data(r.answer), ['10.0.0.2', '127.0.0.1']);
    assert.deepEqual(
      r.answer.map((a) => a[1]),
      ['30', '30'],
      'service TTL from the longest prefix',
    );
  });

  test('names are case-insensitive and the question is echoed as asked', async () => {
    const r = await dig(ctx.port, 'WeB.SeRvIcE.CoNsUl', 'A');
    assert.deepEqual(data(r.answer), ['10.0.0.2', '127.0.0.1']);
    assert.equal(r.question, 'WeB.SeRvIcE.CoNsUl.');
  });

  test('datacenter forms; another datacenter is NXDOMAIN', async () => {
    for (const name of ['web.service.dc1.consul', 'web.service.dc1.dc.consul', 'web.service.DC1.consul']) {
      assert.deepEqual(data((await dig(ctx.port, name, 'A')).answer), ['10.0.0.2', '127.0.0.1'], name);
    }
    const other = await dig(ctx.port, 'web.service.dc2.consul', 'A');
    assert.equal(other.status, 'NXDOMAIN');
  });

  test('tags, including a tag with a dot', async () => {
    assert.deepEqual(data((await dig(ctx.port, 'v2.web.service.consul', 'A')).answer), ['10.0.0.2']);
    assert.deepEqual(data((await dig(ctx.port, 'blue.green.web.service.consul', 'A')).answer), ['10.0.0.2']);
    assert.deepEqual(data((await dig(ctx.port, 'v1.web.service.consul', 'A')).answer), ['127.0.0.1']);
    assert.equal((await dig(ctx.port, 'v9.web.service.consul', 'A')).status, 'NXDOMAIN');
  });

  test('SRV with address records in the additional section', async () => {
    const r = await dig(ctx.port, 'web.service.consul', 'SRV');
    assert.equal(r.status, 'NOERROR');
    assert.deepEqual(data(r.answer), [
      '1 1 8080 n1.node.dc1.consul.',
      '1 1 8081 0a000002.addr.dc1.consul.',
      '1 1 8082 fe800000000000000000000000000001.addr.dc1.consul.',
    ]);
    const add = r.additional.filter((a) => a[3] !== 'OPT').map((a) => `${a[0]} ${a[3]} ${a[4]}`);
    assert.deepEqual(add.sort(), [
      '0a000002.addr.dc1.consul. A 10.0.0.2',
      'fe800000000000000000000000000001.addr.dc1.consul. AAAA fe80::1',
      'n1.node.dc1.consul. A 127.0.0.1',
    ]);
  });

  test('RFC 2782 forms: _tcp means no tag, other labels are tags, the service label is optional', async () => {
    assert.equal((await dig(ctx.port, '_web._tcp.service.consul', 'SRV')).answer.length, 3);
    assert.equal((await dig(ctx.port, '_web._tcp.consul', 'SRV')).answer.length, 3);
    assert.equal((await dig(ctx.port, '_web._tcp.service.dc1.consul', 'SRV')).answer.length, 3);
    assert.deepEqual(data((await dig(ctx.port, '_web._v1.service.consul', 'SRV')).answer), [
      '1 1 8080 n1.node.dc1.consul.',
    ]);
  });

  test('SRV weight comes from Weights.Passing, then Weights.Warning when the instance warns', async () => {
    assert.deepEqual(data((await dig(ctx.port, 'api.service.consul', 'SRV')).answer), [
      '1 10 9000 n2.node.dc1.consul.',
    ]);
    await ctx.catalog.updateCheck('n2', 'api-1-check', 'warning', 'slow');
    assert.deepEqual(data((await dig(ctx.port, 'api.service.consul', 'SRV')).answer), [
      '1 3 9000 n2.node.dc1.consul.',
    ]);
    await ctx.catalog.updateCheck('n2', 'api-1-check', 'passing', '');
  });

  test('AAAA, and NODATA with an SOA when the name has no record of that type', async () => {
    assert.deepEqual(data((await dig(ctx.port, 'web.service.consul', 'AAAA')).answer), ['fe80::1']);
    const r = await dig(ctx.port, 'api.service.consul', 'AAAA');
    assert.equal(r.status, 'NOERROR');
    assert.equal(r.answer.length, 0);
    assert.equal(r.authority[0]?.[3], 'SOA');
    assert.equal(r.authority[0]?.[0], 'consul.');
  });

  test('ANY: one RRset over UDP (RFC 8482), A and AAAA over TCP', async () => {
    // (dig 9.18 sends ANY over TCP unless told +notcp)
    const udp = await dig(ctx.port, 'web.service.consul', 'ANY', '+notcp');
    assert.deepEqual(data(udp.answer), ['10.0.0.2', '127.0.0.1']);
    assert.deepEqual(data((await dig(ctx.port, 'n2.node.consul', 'ANY', '+notcp')).answer), ['10.0.0.9']);
    assert.deepEqual(data((await dig(ctx.port, 'web.service.consul', 'ANY', '+tcp')).answer), [
      '10.0.0.2',
      '127.0.0.1',
      'fe80::1',
    ]);
  });

  test('node lookups: A, TXT meta, other types NODATA, unknown NXDOMAIN', async () => {
    for (const name of ['n2.node.consul', 'N2.NODE.dc1.consul', 'n2.node.dc1.dc.consul']) {
      const r = await dig(ctx.port, name, 'A');
      assert.deepEqual(data(r.answer), ['10.0.0.9'], name);
      assert.equal(r.answer[0]?.[1], '7', 'node TTL');
    }
    assert.deepEqual(data((await dig(ctx.port, 'n2.node.consul', 'TXT')).answer), ['"rack=r1"']);
    const srv = await dig(ctx.port, 'n2.node.consul', 'SRV');
    assert.equal(srv.status, 'NOERROR');
    assert.equal(srv.answer.length, 0);
    const unknown = await dig(ctx.port, 'nope.node.consul', 'A');
    assert.equal(unknown.status, 'NXDOMAIN');
    assert.equal(unknown.authority[0]?.[3], 'SOA');
  });

  test('.addr names resolve the SRV targets of instances with their own address', async () => {
    assert.deepEqual(data((await dig(ctx.port, '0a000002.addr.dc1.consul', 'A')).answer), ['10.0.0.2']);
    const six = await dig(ctx.port, 'fe800000000000000000000000000001.addr.dc1.consul', 'AAAA');
    assert.deepEqual(data(six.answer), ['fe80::1']);
  });

  test('unknown service and unparsable names: NXDOMAIN with the SOA in the authority section', async () => {
    for (const name of ['nope.service.consul', 'foo.bar.consul', 'x.query.consul']) {
      const r = await dig(ctx.port, name, 'A');
      assert.equal(r.status, 'NXDOMAIN', name);
      assert.equal(r.answer.length, 0);
      assert.deepEqual(
        r.authority.map((a) => a.slice(3, 6)),
        [['SOA', 'ns.consul.', 'hostmaster.consul.']],
      );
    }
  });

  test('the domain apex has an SOA and an NS', async () => {
    assert.equal((await dig(ctx.port, 'consul', 'SOA')).answer[0]?.[3], 'SOA');
    const ns = await dig(ctx.port, 'consul', 'NS');
    assert.deepEqual(data(ns.answer), ['n1.node.dc1.consul.']);
  });

  test('names outside the domain are REFUSED without recursors', async () => {
    const r = await dig(ctx.port, 'example.com', 'A');
    assert.equal(r.status, 'REFUSED');
  });

  test('AXFR is not implemented', async () => {
    const r = await dig(ctx.port, 'consul', 'AXFR', '+tcp');
    assert.ok(r.status === 'NOTIMP' || r.status === '', r.status); // dig prints "Transfer failed" for AXFR
  });

  test('plain UDP is trimmed to 512 bytes with TC; EDNS0 and TCP get the full answer', async () => {
    const plain = await dig(ctx.port, 'big.service.consul', 'A', '+noedns', '+ignore');
    assert.ok(plain.flags.includes('tc'));
    assert.ok(plain.size <= 512, `size ${plain.size}`);
    assert.ok(
      plain.answer.length > 3 && plain.answer.length < 40,
      `fills the packet: ${plain.answer.length}`,
    );
    const edns = await dig(ctx.port, 'big.service.consul', 'A', '+bufsize=4096', '+ignore');
    assert.ok(!edns.flags.includes('tc'));
    assert.equal(edns.answer.length, 40);
    const small = await dig(ctx.port, 'big.service.consul', 'A', '+bufsize=600', '+ignore');
    assert.ok(small.flags.includes('tc') && small.size <= 600);
    const tcp = await dig(ctx.port, 'big.service.consul', 'A', '+tcp');
    assert.ok(!tcp.flags.includes('tc'));
    assert.equal(tcp.answer.length, 40);
    const retried = await dig(ctx.port, 'big.service.consul', 'SRV', '+noedns'); // dig retries over TCP on TC
    assert.equal(retried.answer.length, 40);
    assert.equal(retried.additional.length, 40);
  });

  test('trimmed SRV answers keep the additional records of the answers they keep', async () => {
    const r = await dig(ctx.port, 'big.service.consul', 'SRV', '+noedns', '+ignore');
    assert.ok(r.flags.includes('tc'));
    const targets = r.answer.map((a) => a[7]).sort();
    assert.deepEqual(r.additional.map((a) => a[0]).sort(), targets);
  });

  test('answers are shuffled on every query', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 6; i++) {
      orders.add((await dig(ctx.port, 'big.service.consul', 'A', '+tcp')).answer.map((a) => a[4]).join());
    }
    assert.ok(orders.size > 1);
  });
});

describe('dns: health changes show in the next answer', () => {
  let ctx: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    ctx = await setup();
  });
  after(() => ctx.dns.close());

  test('a critical service check removes the instance; passing brings it back', async () => {
    assert.deepEqual(data((await dig(ctx.port, 'web.service.consul', 'A')).answer), [
      '10.0.0.2',
      '127.0.0.1',
    ]);
    await ctx.catalog.updateCheck('n1', 'web-1-check', 'critical', 'down');
    assert.deepEqual(data((await dig(ctx.port, 'web.service.consul', 'A')).answer), ['10.0.0.2']);
    await ctx.catalog.updateCheck('n1', 'web-1-check', 'warning', 'meh');
    assert.deepEqual(data((await dig(ctx.port, 'web.service.consul', 'A')).answer), [
      '10.0.0.2',
      '127.0.0.1',
    ]);
    await ctx.catalog.updateCheck('n1', 'web-1-check', 'passing', '');
  });

  test('the last healthy instance going critical gives NXDOMAIN', async () => {
    assert.equal((await dig(ctx.port, 'api.service.consul', 'A')).status, 'NOERROR');
    await ctx.catalog.updateCheck('n2', 'api-1-check', 'critical', 'down');
    assert.equal((await dig(ctx.port, 'api.service.consul', 'A')).status, 'NXDOMAIN');
    await ctx.catalog.updateCheck('n2', 'api-1-check', 'passing', '');
    assert.deepEqual(data((await dig(ctx.port, 'api.service.consul', 'A')).answer), ['10.0.0.9']);
  });

  test('a critical node check removes every instance on the node', async () => {
    await ctx.catalog.catalogRegister({
      node: { id: 'n2', node: 'n2', address: '10.0.0.9', taggedAddresses: {}, meta: {} },
      checks: [{ ...chk('node-alive', ''), status: 'critical' }],
    });
    assert.equal((await dig(ctx.port, 'api.service.consul', 'A')).status, 'NXDOMAIN');
    await ctx.catalog.updateCheck('n2', 'node-alive', 'passing', '');
    assert.equal((await dig(ctx.port, 'api.service.consul', 'A')).status, 'NOERROR');
  });

  test('registering, moving a node and deregistering show at once', async () => {
    await ctx.catalog.registerService(svc('new-1', 'fresh', '10.9.9.9', 1), []);
    assert.deepEqual(data((await dig(ctx.port, 'fresh.service.consul', 'A')).answer), ['10.9.9.9']);
    await ctx.catalog.catalogRegister({
      node: { id: 'n2', node: 'n2', address: '10.0.0.10', taggedAddresses: {}, meta: {} },
      checks: [],
    });
    assert.deepEqual(data((await dig(ctx.port, 'api.service.consul', 'A')).answer), ['10.0.0.10']);
    await ctx.catalog.deregisterService('new-1');
    assert.equal((await dig(ctx.port, 'fresh.service.consul', 'A')).status, 'NXDOMAIN');
  });
});

test('dns: onlyPassing drops warning instances', async () => {
  const ctx = await setup({ onlyPassing: true });
  try {
    await ctx.catalog.updateCheck('n1', 'web-1-check', 'warning', 'meh');
    assert.deepEqual(data((await dig(ctx.port, 'web.service.consul', 'A')).answer), ['10.0.0.2']);
  } finally {
    await ctx.dns.close();
  }
});

test("dns: Node's dns.Resolver finds addresses and ports", async () => {
  const ctx = await setup();
  try {
    const r = new Resolver({ timeout: 3000, tries: 1 });
    r.setServers([`127.0.0.1:${ctx.port}`]);
    assert.deepEqual((await r.resolve4('web.service.consul')).sort(), ['10.0.0.2', '127.0.0.1']);
    assert.deepEqual(await r.resolve6('web.service.consul'), ['fe80::1']);
    const srv = await r.resolveSrv('_api._tcp.service.consul');
    assert.deepEqual(
      srv.map(({ name, port, priority, weight }) => ({ name, port, priority, weight })),
      [{ name: 'n2.node.dc1.consul', port: 9000, priority: 1, weight: 10 }],
    );
    assert.equal(
      (await r.resolveSrv('_big._tcp.service.consul')).length,
      40,
      'c-ares retries over TCP on TC',
    );
    await assert.rejects(r.resolve4('nope.service.consul'), { code: 'ENOTFOUND' });
    await assert.rejects(r.resolve6('api.service.consul'), { code: 'ENODATA' });
    await assert.rejects(r.resolve4('example.com'), { code: 'EREFUSED' });
  } finally {
    await ctx.dns.close();
  }
});

describe('dns: recursors', () => {
  // The upstream is a second Phare DNS server for the `example` domain: a real server, no mock.
  let upstream: Awaited<ReturnType<typeof setup>>;
  let blackhole: dgram.Socket;
  let blackholePort: number;
  before(async () => {
    const catalog = await Catalog.open({
      store: createMemoryStore(),
      node: { name: 'up', id: 'u', address: '192.0.2.1' },
      datacenter: 'dc1',
    });
    await catalog.registerService(svc('far-1', 'far', '192.0.2.7', 80), []);
    const dns = createDnsServer({ catalog, logger, domain: 'example', datacenter: 'dc1' });
    const { port } = await dns.listen({ host: '127.0.0.1', port: 0 });
    upstream = { catalog, dns, port };
    blackhole = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => blackhole.bind(0, '127.0.0.1', resolve));
    blackholePort = blackhole.address().port;
  });
  after(async () => {
    await upstream.dns.close();
    blackhole.close();
  });

  test('names outside the domain are relayed; RA is set', async () => {
    const ctx = await setup({ recursors: [{ host: '127.0.0.1', port: upstream.port }] });
    try {
      const r = await dig(ctx.port, 'far.service.example', 'A');
      assert.deepEqual(data(r.answer), ['192.0.2.7']);
      const own = await dig(ctx.port, 'web.service.consul', 'A');
      assert.ok(own.flags.includes('ra'));
      assert.equal((await dig(ctx.port, 'nope.service.example', 'A')).status, 'NXDOMAIN');
      assert.deepEqual(data((await dig(ctx.port, 'far.service.example', 'A', '+tcp')).answer), ['192.0.2.7']);
    } finally {
      await ctx.dns.close();
    }
  });

  test('a silent recursor times out and the next one answers; all failing gives SERVFAIL', async () => {
    const ctx = await setup({
      recursors: [
        { host: '127.0.0.1', port: blackholePort },
        { host: '127.0.0.1', port: upstream.port },
      ],
      recursorTimeoutMs: 500,
    });
    const dead = await setup({
      recursors: [
        { host: '127.0.0.1', port: blackholePort },
        { host: '127.0.0.1', port: 9 }, // discard port, nothing listens: ICMP port unreachable
      ],
      recursorTimeoutMs: 500,
    });
    try {
      assert.deepEqual(data((await dig(ctx.port, 'far.service.example', 'A')).answer), ['192.0.2.7']);
      assert.equal((await dig(dead.port, 'far.service.example', 'A')).status, 'SERVFAIL');
    } finally {
      await ctx.dns.close();
      await dead.dns.close();
    }
  });
});

describe('dns: raw sockets', () => {
  let ctx: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    ctx = await setup();
  });
  after(() => ctx.dns.close());

  function udpExchange(port: number, packets: Buffer[], waitForId: number): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket('udp4');
      const got: Buffer[] = [];
      const timer = setTimeout(() => {
        s.close();
        reject(new Error('no answer'));
      }, 5000);
      s.on('message', (m) => {
        got.push(m);
        if (m.readUInt16BE(0) === waitForId) {
          clearTimeout(timer);
          s.close();
          resolve(got);
        }
      });
      for (const p of packets) s.send(p, port, '127.0.0.1');
    });
  }

  const valid = (id: number) =>
    encode({ type: 'query', id, flags: 0, questions: [{ type: 'A', name: 'web.service.consul' }] });

  test('FORMERR where a header can be read, silence otherwise', async () => {
    const garbage = Buffer.concat([
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01]),
      Buffer.alloc(6),
      Buffer.from([70]),
    ]);
    const got = await udpExchange(ctx.port, [Buffer.from([1, 2, 3]), garbage, valid(777)], 777);
    assert.equal(got.length, 2, 'nothing for the 3-byte packet');
    const formerr = decode(got[0] as Buffer);
    assert.equal(formerr.id, 0x1234);
    assert.equal(((got[0] as Buffer)[3] as number) & 0xf, 1, 'FORMERR');
    assert.equal(decode(got[1] as Buffer).answers?.length, 2);
  });

  test('TCP: pipelined queries each get an answer, and a frame split across writes is reassembled', async () => {
    const sock = net.connect(ctx.port, '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    const frame = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);
    const both = Buffer.concat([frame(valid(1)), frame(valid(2))]);
    const answers: number[] = [];
    let buf = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          answers.push(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))).id as number);
          buf = buf.subarray(2 + buf.readUInt16BE(0));
          if (answers.length === 3) resolve();
        }
      });
    });
    sock.write(both);
    const third = frame(valid(3));
    sock.write(third.subarray(0, 5));
    setTimeout(() => sock.write(third.subarray(5)), 50);
    await done;
    sock.destroy();
    assert.deepEqual(answers, [1, 2, 3]);
  });

  test('close() is idempotent and releases the port', async () => {
    const extra = await setup();
    assert.equal((await dig(extra.port, 'web.service.consul', 'A')).status, 'NOERROR');
    await Promise.all([extra.dns.close(), extra.dns.close()]);
    await extra.dns.close();
    // the UDP and TCP ports are free again: binding them succeeds
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(extra.port, '127.0.0.1', () => resolve());
    });
    udp.close();
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(extra.port, '127.0.0.1', () => resolve());
    });
    await new Promise((r) => tcp.close(r));
  });
});

describe('dns: response-rate limiting per client address (issue 14)', () => {
  let ctx: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    ctx = await setup({ udpRateLimit: 20 });
  });
  after(() => ctx.dns.close());

  /** Sends `n` SRV queries for `big` from `from` at once; collects what comes back within 400 ms of the last. */
  function burst(n: number, from: string): Promise<Buffer[]> {
    return new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      const got: Buffer[] = [];
      let quiet: NodeJS.Timeout | undefined;
      const settle = () => {
        clearTimeout(quiet);
        quiet = setTimeout(() => {
          s.close();
          resolve(got);
        }, 400);
      };
      s.on('message', (m) => {
        got.push(m);
        settle();
      });
      s.bind(0, from, () => {
        for (let id = 1; id <= n; id++) {
          const q = encode({
            type: 'query',
            id,
            flags: 0,
            questions: [{ type: 'SRV', name: 'big.service.consul' }],
            additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as never],
          });
          s.send(q, ctx.port, '127.0.0.1');
        }
        settle();
      });
    });
  }

  test('past the bucket, every other query gets an empty TC answer and the rest are dropped', async () => {
    const got = await burst(100, '127.0.0.1');
    const full = got.filter((m) => (decode(m).answers?.length ?? 0) > 0);
    const slips = got.filter((m) => ((m.readUInt16BE(2) >> 9) & 1) === 1 && decode(m).answers?.length === 0);
    assert.ok(full.length >= 20 && full.length <= 30, `answers ${full.length}`);
    assert.ok(slips.length >= 30 && slips.length <= 45, `slips ${slips.length}`);
    assert.ok(got.length <= 75, `${got.length} of 100 answered`);
    const big = Math.min(...full.map((m) => m.length));
    const small = Math.max(...slips.map((m) => m.length));
    assert.ok(big > 1000 && small < 100, `full answers ${big} B, slips ${small} B: no amplification`);
  });

  test('another client address has its own bucket; TCP is not limited', async () => {
    const other = await burst(5, '127.0.0.2');
    assert.equal(other.filter((m) => (decode(m).answers?.length ?? 0) > 0).length, 5);
    const r = await dig(ctx.port, 'big.service.consul', 'SRV', '+tcp');
    assert.equal(r.answer.length, 40);
  });
});
