/**
 * Issue 11 §5, §8, §10 against a real agent: hostile bodies get a 400/413 naming the field and the limit
 * and change nothing; the tag merge of `/v1/catalog/services` is linear; durations past Node's timer limit
 * are refused; `__proto__` keys never reach a decoded object.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAgentInProcess } from '../helpers/agent.ts';

let agent: Awaited<ReturnType<typeof startAgentInProcess>>;

before(async () => {
  agent = await startAgentInProcess();
});
after(async () => {
  await agent.close();
});

async function put(path: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${agent.url}${path}`, {
    method: 'PUT',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function services(): Promise<Record<string, string[]>> {
  return (await (await fetch(`${agent.url}/v1/catalog/services`)).json()) as Record<string, string[]>;
}

describe('size limits (§5)', () => {
  const cases: [string, unknown, number, RegExp][] = [
    [
      '100,000 tags (870 KB)',
      { Name: 'big', Tags: Array.from({ length: 100_000 }, (_, i) => `tag-${i}`) },
      413,
      /Request body too large: the limit is 512 KiB/,
    ],
    [
      '50,000 one-letter tags (under the byte limit)',
      { Name: 'big', Tags: Array(50_000).fill('a') },
      400,
      /Tags has 50000 entries; the limit is 256/,
    ],
    [
      '65 checks',
      {
        Name: 'many',
        Checks: Array.from({ length: 65 }, (_, i) => ({ CheckID: `c${i}`, TTL: '10s' })),
      },
      400,
      /Checks has 65 entries; the limit is 64/,
    ],
    [
      'an HTTP check with 100 headers',
      {
        Name: 'hdr',
        Check: {
          HTTP: 'http://127.0.0.1:1/',
          Interval: '10s',
          Header: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`X-${i}`, ['v']])),
        },
      },
      400,
      /Check\.Header has 100 entries; the limit is 64/,
    ],
    [
      '65 Meta pairs (Consul text)',
      { Name: 'meta', Meta: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
      400,
      /Invalid Service Meta: Service metadata cannot contain more than 64 key\/value pairs/,
    ],
    [
      'a Meta value of 513 characters (Consul text)',
      { Name: 'meta', Meta: { k: 'v'.repeat(513) } },
      400,
      /Value is too long \(limit: 512 characters\)/,
    ],
    [
      '5,000 levels of nesting',
      `{"Name":"deep","Meta":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`,
      400,
      /is nested deeper than 16 levels/,
    ],
  ];
  for (const [what, body, status, text] of cases) {
    test(`${what} -> ${status}, nothing registered`, async () => {
      const before = await services();
      const r = await put('/v1/agent/service/register', body);
      assert.equal(r.status, status, r.text);
      assert.match(r.text, text);
      assert.deepEqual(await services(), before);
    });
  }

  test('catalog/services merges 256 tags × 300 instances in linear time', async () => {
    // 76,800 distinct tags under one name: the old Array.includes merge did ~3·10⁹ comparisons (seconds,
    // with the event loop blocked); a Set merge takes milliseconds.
    const tagsOf = (i: number) => Array.from({ length: 256 }, (_, j) => `i${i}-t${j}`);
    for (let i = 0; i < 300; i += 30) {
      await Promise.all(
        Array.from({ length: 30 }, (_, k) =>
          put('/v1/agent/service/register', { Name: 'wide', ID: `wide-${i + k}`, Tags: tagsOf(i + k) }),
        ).map(async (p) => assert.equal((await p).status, 200)),
      );
    }
    // CPU time, not wall time: on a loaded machine the wall clock says how long the test waited for a
    // core; CPU time says how much work the answer took. The quadratic merge spent seconds of CPU here, a
    // linear one spends tens of milliseconds (agent and client share this process: both are counted).
    const cpu0 = process.cpuUsage();
    const all = await services();
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    assert.equal(all.wide?.length, 300 * 256);
    assert.equal(new Set(all.wide).size, 300 * 256);
    assert.ok(cpuMs < 1000, `catalog/services took ${cpuMs.toFixed(0)} ms of CPU`);
  });
});

describe('durations past Node timer limit (§8)', () => {
  for (const [field, check] of [
    ['TTL', { TTL: '600h' }],
    ['Interval', { HTTP: 'http://127.0.0.1:1/', Interval: '10000h' }],
    ['Timeout', { TCP: '127.0.0.1:1', Interval: '10s', Timeout: '700h' }],
    ['DeregisterCriticalServiceAfter', { TTL: '10s', DeregisterCriticalServiceAfter: '9000h' }],
  ] as const) {
    test(`${field} past 596h -> 400 naming the field and the range`, async () => {
      const r = await put('/v1/agent/service/register', { Name: `dur-${field}`, Check: check });
      assert.equal(r.status, 400, r.text);
      assert.match(
        r.text,
        new RegExp(`Invalid check: ${field} must be at most 596h0m0s \\(24\\.8 days\\), got `),
      );
      assert.equal((await services())[`dur-${field}`], undefined);
    });
  }

  test('a duration given in nanoseconds is held to the same range', async () => {
    const r = await put('/v1/agent/check/register', { Name: 'ns', TTL: 600 * 3600 * 1e9 });
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /TTL must be at most 596h0m0s/);
  });

  test('596h is accepted and the TTL check does not expire at once', async () => {
    const r = await put('/v1/agent/check/register', { Name: 'long-ttl', CheckID: 'long-ttl', TTL: '596h' });
    assert.equal(r.status, 200, r.text);
    await new Promise((r) => setTimeout(r, 300));
    const checks = (await (await fetch(`${agent.url}/v1/agent/checks`)).json()) as Record<
      string,
      { Status: string }
    >;
    assert.equal(checks['long-ttl']?.Status, 'critical'); // initial status of a TTL check, not an expiry
    const pass = await fetch(`${agent.url}/v1/agent/check/pass/long-ttl`, { method: 'PUT' });
    assert.equal(pass.status, 200);
    await new Promise((r) => setTimeout(r, 300));
    const after = (await (await fetch(`${agent.url}/v1/agent/checks`)).json()) as Record<
      string,
      { Status: string }
    >;
    assert.equal(after['long-ttl']?.Status, 'passing', 'a 596h TTL expired within 300 ms');
  });
});

describe('prototype keys (§10)', () => {
  const bodies: [string, string, RegExp][] = [
    ['top-level __proto__', '{"__proto__":{"Name":"x"}}', /key "__proto__" is not allowed/],
    ['escaped __proto__', '{"\\u005f_proto__":{"Name":"x"}}', /key "__proto__" is not allowed/],
    [
      '__proto__ in Meta',
      '{"Name":"p1","Meta":{"__proto__":{"a":"b"}}}',
      /key "Meta\.__proto__" is not allowed/,
    ],
    [
      'constructor.prototype in a check',
      '{"Name":"p2","Check":{"constructor":{"prototype":{"TTL":"1s"}}}}',
      /key "Check\.constructor\.prototype" is not allowed/,
    ],
  ];
  for (const [what, body, text] of bodies) {
    test(`${what} -> 400, nothing registered`, async () => {
      const before = await services();
      const r = await put('/v1/agent/service/register', body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, text);
      assert.deepEqual(await services(), before);
      assert.equal(({} as Record<string, unknown>).Name, undefined, 'Object.prototype was polluted');
    });
  }

  test('catalog/register: __proto__ in NodeMeta -> 400', async () => {
    const r = await put(
      '/v1/catalog/register',
      '{"Node":"n","Address":"1.2.3.4","NodeMeta":{"__proto__":{"x":"y"}}}',
    );
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /NodeMeta\.__proto__/);
    const nodes = (await (await fetch(`${agent.url}/v1/catalog/nodes`)).json()) as { Node: string }[];
    assert.equal(
      nodes.find((n) => n.Node === 'n'),
      undefined,
    );
  });

  test('a plain "constructor" key stays an ordinary Meta key', async () => {
    const r = await put('/v1/agent/service/register', { Name: 'ctor', Meta: { constructor: 'fine' } });
    assert.equal(r.status, 200, r.text);
  });
});
