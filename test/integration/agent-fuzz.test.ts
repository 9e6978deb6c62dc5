/**
 * Property test of the agent's HTTP API: random methods, paths under /v1/, query strings and bodies
 * (random JSON, random bytes, near-valid registrations). The agent must answer every request with a
 * status below 500 except Consul's documented 500s, never crash or hang, keep serving, and leave its
 * state untouched by every request that failed.
 *
 * Documented 500s (Consul docs, Agent Service API — Consul answers these with 500, and clients key on it):
 *   - `No path to datacenter`                                  (?dc= / Datacenter of another DC)
 *   - `CheckID "<id>" does not have associated TTL`            (pass/warn/fail/update on a non-TTL check)
 *   - catalog/register and catalog/deregister RPC-style errors (`Must provide node`, `Must provide address…`,
 *     `Must provide check name`, `Unknown service ID "<id>" for check "<id>"`)
 *   - `Service tagged address "<key>" must be a valid ipv4|ipv6 address`
 *
 * `/v1/agent/health/service/*` answers 503 (critical or maintenance) and 429 (warning) by design.
 *
 * Health-check targets are loopback only (127.0.0.1:1, refused), so nothing here reaches another host.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { call, type RawResponse } from '../fixtures/http.ts';
import { startAgentInProcess } from '../helpers/agent.ts';

const DOCUMENTED_500 = [
  /^No path to datacenter$/,
  /^CheckID ".*" does not have associated TTL$/s,
  /^Must provide node$/,
  /^Must provide address if SkipNodeUpdate is not set$/,
  /^Must provide check name$/,
  /^Unknown service ID ".*" for check ".*"$/s,
  /^Service tagged address ".*" must be a valid ipv[46] address$/s,
  // KV and sessions (Consul docs, KV store and Session HTTP APIs)
  /^strconv\.ParseUint: parsing ".*": (invalid syntax|value out of range)$/s,
  /^invalid session ".*"$/s,
  /^missing session$/,
  /^Invalid Session TTL '\d+', must be between \[10s=24h0m0s\]$/,
  /^Session TTL '.*' invalid: .*$/s,
  /^Invalid Behavior setting '.*'$/s,
  /^Missing node registration$/,
  /^Missing check '.*' registration$/s,
];

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent;

before(async () => {
  agent = await startAgentInProcess();
  const put = (path: string, body?: unknown) => call(agent.url, 'PUT', path, body);
  await put('/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-1',
    Tags: ['v1'],
    Check: { TTL: '1h', CheckID: 'ttl-1' },
  });
  await put('/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-2',
    Check: { HTTP: 'http://127.0.0.1:1/', Interval: '10s' },
  });
  await put('/v1/catalog/register', {
    Node: 'ext',
    Address: '10.0.0.9',
    Service: { Service: 'ext', ID: 'ext-1' },
  });
});
after(async () => {
  await agent.close();
});

const SEGMENTS = [
  'web',
  'web-1',
  'web-2',
  'ttl-1',
  'service:web-2',
  'serfHealth',
  '_node_maintenance',
  'test-node',
  'ext',
  'any',
  'passing',
  '',
];
const segment = fc.oneof(
  fc.constantFrom(...SEGMENTS),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.constantFrom('%ZZ', '%00', '..', '%2F', 'a%20b'),
);
const ROUTES = [
  '/v1/agent/service/register',
  '/v1/agent/service/deregister/',
  '/v1/agent/service/maintenance/',
  '/v1/agent/service/',
  '/v1/agent/services',
  '/v1/agent/checks',
  '/v1/agent/check/register',
  '/v1/agent/check/deregister/',
  '/v1/agent/check/pass/',
  '/v1/agent/check/warn/',
  '/v1/agent/check/fail/',
  '/v1/agent/check/update/',
  '/v1/agent/maintenance',
  '/v1/agent/health/service/id/',
  '/v1/agent/health/service/name/',
  '/v1/agent/self',
  '/v1/agent/members',
  '/v1/catalog/register',
  '/v1/catalog/deregister',
  '/v1/catalog/services',
  '/v1/catalog/service/',
  '/v1/catalog/nodes',
  '/v1/catalog/node/',
  '/v1/catalog/node-services/',
  '/v1/catalog/datacenters',
  '/v1/health/service/',
  '/v1/health/checks/',
  '/v1/health/node/',
  '/v1/health/state/',
  '/v1/status/leader',
  '/v1/status/peers',
  '/v1/kv/',
  '/v1/kv/a/',
  '/v1/session/create',
  '/v1/session/renew/',
  '/v1/session/destroy/',
  '/v1/session/info/',
  '/v1/txn',
];
const WRITES = /\/(register|deregister|maintenance|pass|warn|fail|update|create|renew|destroy|txn)(\/|$)/;
const anyMethod = fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
/** A path and, most of the time, the method its route takes (so requests get past the 405). */
const target = fc
  .tuple(
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(fc.constantFrom(...ROUTES), segment)
          .map(([r, s]) => (r.endsWith('/') ? r + s : r)),
      },
      {
        weight: 1,
        arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((segs) => `/v1/${segs.join('/')}`),
      },
    ),
    fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: anyMethod }),
  )
  .map(([p, m]) => ({ path: p, method: m ?? (WRITES.test(p) ? 'PUT' : 'GET') }));

// Blocking parameters are kept short: ?index with a real wait would park the request (correctly) for minutes.
const queryValue = fc.oneof(
  fc.constantFrom('', 'true', 'false', '1', '0', 'True', 'maybe', 'dc1', 'other', '10s', 'x'),
  fc.string({ maxLength: 10 }),
);
const FILTERS = [
  'Service == web',
  'Service ==',
  '"v1" in Tags',
  'Checks.Status == passing',
  'not (',
  'Port == 80 and',
  'Meta.x != y',
  'ServiceTags contains v1',
  '(((',
];
const query = fc
  .record(
    {
      passing: queryValue,
      tag: queryValue,
      dc: fc.constantFrom('dc1', 'DC1', 'other', ''),
      stale: queryValue,
      consistent: queryValue,
      pretty: queryValue,
      filter: fc.oneof(fc.constantFrom(...FILTERS), fc.string({ maxLength: 20 })),
      enable: queryValue,
      reason: queryValue,
      note: queryValue,
      'replace-existing-checks': queryValue,
      'node-meta': fc.constantFrom('a:b', 'rack', ':', ''),
      index: fc.oneof(
        fc.constantFrom('0', '1', '-1', 'abc', '99999999999999999999', '1.5'),
        fc.nat().map(String),
      ),
      format: fc.constantFrom('text', 'prometheus', 'json'),
      hash: fc.string({ maxLength: 8 }),
      // KV (presence parameters in Consul)
      cas: fc.oneof(fc.constantFrom('0', '1', 'x', '-1', '18446744073709551616'), fc.nat().map(String)),
      flags: fc.constantFrom('0', '7', 'x', '18446744073709551615', '18446744073709551616'),
      acquire: fc.constantFrom('', 'nope', '00000000-0000-0000-0000-000000000000'),
      release: fc.constantFrom('', 'nope'),
      recurse: queryValue,
      keys: queryValue,
      raw: queryValue,
      separator: fc.constantFrom('/', '', 'a'),
    },
    { requiredKeys: [] },
  )
  .chain((q) =>
    fc
      .dictionary(
        fc.string({ maxLength: 6 }).filter((k) => !['index', 'wait', 'hash'].includes(k)),
        queryValue,
        { maxKeys: 2 },
      )
      .map((extra) => ({ ...extra, ...q })),
  )
  .map((q) => {
    const entries = Object.entries(q).map(([k, v]) => [k, String(v)] as [string, string]);
    // an ?index always comes with a short (or invalid) wait
    if ('index' in q || 'hash' in q)
      entries.push(['wait', ['1ms', '20ms', 'bad', '5'][entries.length % 4] as string]);
    return entries.length === 0
      ? ''
      : `?${entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
  });

const duration = fc.oneof(
  fc.constantFrom('1h', '0s', '-1s', 'x', '10ms', '1.5h', ''),
  fc.integer({ min: -5, max: 5 }),
  fc.constant(3_600_000_000_000),
);
const anyScalar = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null));
const checkBody = fc.record(
  {
    Name: fc.oneof(fc.constantFrom('c', ''), anyScalar),
    CheckID: fc.oneof(fc.constantFrom('ttl-1', 'fz', 'serfHealth'), anyScalar),
    TTL: duration,
    HTTP: fc.constantFrom('http://127.0.0.1:1/', 'nope', 'ftp://127.0.0.1/', ''),
    TCP: fc.constantFrom('127.0.0.1:1', 'nope', '127.0.0.1:99999'),
    Interval: duration,
    Status: fc.oneof(fc.constantFrom('passing', 'warning', 'critical', 'bad', ''), anyScalar),
    ServiceID: fc.constantFrom('web-1', 'nope', ''),
    Foo: anyScalar,
  },
  { requiredKeys: [] },
);
const serviceBody = fc.record(
  {
    Name: fc.oneof(fc.constantFrom('web', 'fz', '', ' '), anyScalar),
    ID: fc.oneof(fc.constantFrom('web-1', 'fz-1', 'a/b', ''), anyScalar),
    Port: fc.oneof(fc.integer({ min: -10, max: 70_000 }), anyScalar),
    Address: fc.constantFrom('127.0.0.1', '0.0.0.0', '::1', 'host', ''),
    Tags: fc.oneof(fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), anyScalar),
    Meta: fc.oneof(
      fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
      anyScalar,
    ),
    Weights: fc.oneof(
      fc.record({ Passing: fc.integer({ min: -1, max: 70_000 }), Warning: fc.integer({ min: -1, max: 3 }) }),
      anyScalar,
    ),
    TaggedAddresses: fc.constantFrom(
      { lan_ipv4: { Address: 'nope', Port: 1 } },
      { lan: { Address: '10.0.0.1', Port: 1 } },
      null,
    ),
    Check: checkBody,
    Checks: fc.array(checkBody, { maxLength: 3 }),
    Node: fc.constantFrom('ext', 'test-node', '', 'new-node'),
    Service: fc.constantFrom('ext', ''),
  },
  { requiredKeys: [] },
);
const catalogBody = fc.record(
  {
    Node: fc.oneof(fc.constantFrom('ext', 'test-node', '', 'n2'), anyScalar),
    Address: fc.constantFrom('10.0.0.1', '', 'x'),
    Datacenter: fc.constantFrom('dc1', 'other', ''),
    Service: fc.record(
      { Service: fc.constantFrom('ext', '', 'z'), ID: fc.constantFrom('ext-1', 'z-1') },
      { requiredKeys: [] },
    ),
    Check: checkBody,
    ServiceID: fc.constantFrom('ext-1', 'nope'),
    CheckID: fc.constantFrom('serfHealth', 'nope'),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 3, arbitrary: serviceBody.map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: checkBody.map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: catalogBody.map((b) => JSON.stringify(b)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"Name":"x"',
      'null',
      '[]',
      '{"Name":"x","Name":"y"}',
      '\uFEFF{}',
      '{"Status":"passing"}',
    ),
  },
);

async function state(): Promise<string> {
  const get = async (p: string) => {
    const r = await call(agent.url, 'GET', p);
    assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
    return r.json<Record<string, Record<string, unknown>>>();
  };
  const checks = await get('/v1/agent/checks');
  // a running HTTP check may refresh its Output between two reads; its Status stays critical (port 1)
  for (const c of Object.values(checks)) delete c['Output'];
  const kv = await call(agent.url, 'GET', '/v1/kv/?recurse');
  assert.ok(kv.status === 200 || kv.status === 404, `kv: ${kv.status} ${kv.text}`);
  return JSON.stringify({
    kv: kv.status === 200 ? kv.text : '',
    s: await get('/v1/agent/services'),
    c: checks,
    cs: await get('/v1/catalog/services'),
  });
}

test('random requests: status < 500 except documented 500s, no state change on failure, agent keeps serving', async () => {
  const seen = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(target, query, body, async ({ method: m, path: p }, q, b) => {
      const before = await state();
      let r: RawResponse;
      try {
        r = await call(agent.url, m, p + q, m === 'GET' || m === 'HEAD' ? undefined : b, { timeoutMs: 5000 });
      } catch (err) {
        throw new Error(`${m} ${p}${q}: no answer (${String(err)})`);
      }
      seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
      const where = `${m} ${p}${q} body=${b === undefined ? '-' : String(b).slice(0, 200)} -> ${r.status} ${r.text.slice(0, 200)}`;
      // agent/health/service/* answers 503 for critical/maintenance by design (Consul docs, Agent HTTP API)
      const healthEndpoint = p.startsWith('/v1/agent/health/service/') && r.status === 503;
      if (r.status >= 500 && !healthEndpoint) {
        // a HEAD answer has no body: its error text is the GET's
        const text =
          m === 'HEAD' ? (await call(agent.url, 'GET', p + q, undefined, { timeoutMs: 5000 })).text : r.text;
        assert.ok(r.status === 500 && DOCUMENTED_500.some((re) => re.test(text)), `undocumented ${where}`);
      }
      assert.ok(!/^Internal error/.test(r.text), where);
      if (r.status >= 400 && !healthEndpoint)
        assert.equal(await state(), before, `state changed by a failed request: ${where}`);
    }),
    {
      numRuns: Number(process.env['PHARE_FUZZ_RUNS'] ?? 400),
      interruptAfterTimeLimit: Number(process.env['PHARE_FUZZ_MS'] ?? 20_000),
      markInterruptAsFailure: false,
    },
  );
  const leader = await call(agent.url, 'GET', '/v1/status/leader');
  assert.equal(leader.status, 200);
  console.log(
    `# statuses seen: ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => a[0] - b[0])))}`,
  );
});
