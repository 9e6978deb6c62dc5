/**
 * The hand-written registration decoder (decode-fast.ts) against the zod schema it stands in for: on every
 * body, valid or not, it either gives up (`undefined`, the schema decodes) or returns exactly what the schema
 * returns. Bodies are the usual shapes plus a seeded random mix of right and wrong fields and values.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../../../test/helpers/random.ts';
import { decodeBody, serviceRegisterSchema } from './decode.ts';
import { fastServiceBody } from './decode-fast.ts';

const usual: unknown[] = [
  { Name: 'web' },
  {
    ID: 'svc-1',
    Name: 'bench-1',
    Address: '10.1.0.1',
    Port: 10001,
    Tags: ['bench'],
    Meta: { n: '1' },
    Check: { TTL: '60s', Status: 'passing' },
  },
  {
    Name: 'api',
    ID: 'api/1',
    Port: 8080,
    EnableTagOverride: true,
    Kind: '',
    Weights: { Passing: 3 },
    Checks: [
      { HTTP: 'http://127.0.0.1:8080/health', Interval: '10s', Timeout: '1s', Name: 'h' },
      { TCP: '127.0.0.1:8080', Interval: 5_000_000_000, DeregisterCriticalServiceAfter: '90m' },
      { TTL: '15s', CheckID: 'ttl', Notes: 'n', SuccessBeforePassing: 2, FailuresBeforeCritical: 3 },
    ],
  },
  { Name: 'x', Tags: [], Meta: {}, Weights: { Passing: 1, Warning: 1 }, SocketPath: '/tmp/s' },
];

// values of every kind the decoders must tell apart
const VALUES: unknown[] = [
  'web',
  '',
  '10s',
  'soon',
  '-1s',
  0,
  8080,
  1.5,
  -3,
  2 ** 60,
  5_000_000_000,
  true,
  false,
  null,
  [],
  ['a', 'b'],
  ['a', 1],
  {},
  { k: 'v' },
  { k: 1 },
  { Passing: 2 },
  { Passing: 'x' },
  { TTL: '10s' },
  { TTL: 'bad' },
  { ttl: '10s' },
  { HTTP: 'http://x', Interval: '1s', Bogus: 1 },
  [{ TTL: '1s' }, { TCP: 'x:1', Interval: 1e9 }],
  [{ TTL: '1s' }, 'x'],
];
const KEYS = [
  'Name',
  'name',
  'ID',
  'service_id',
  'Address',
  'Port',
  'Tags',
  'Meta',
  'Weights',
  'EnableTagOverride',
  'enable_tag_override',
  'Kind',
  'SocketPath',
  'Check',
  'Checks',
  'Token',
  'Connect',
  'Service',
  'Unknown',
];

function agree(body: unknown): 'fast' | 'schema' {
  const fast = fastServiceBody(body);
  const schema = serviceRegisterSchema.safeParse(body);
  if (fast === undefined) return 'schema';
  assert.ok(schema.success, `fast path took a body the schema refuses: ${JSON.stringify(body)}`);
  assert.deepStrictEqual(fast, schema.data, JSON.stringify(body));
  return 'fast';
}

test('the usual registrations take the fast path and decode as the schema decodes them', () => {
  for (const body of usual) assert.equal(agree(body), 'fast', JSON.stringify(body));
  // through decodeBody too (what the route calls), with JSON text as the wire has it
  for (const body of usual)
    assert.deepStrictEqual(
      decodeBody(Buffer.from(JSON.stringify(body)), serviceRegisterSchema),
      serviceRegisterSchema.parse(body),
    );
});

test('on 5,000 random bodies the fast path gives up or agrees with the schema; errors stay the schema’s', () => {
  const next = seededRandom(12);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  let fast = 0;
  for (let i = 0; i < 5000; i++) {
    const base = structuredClone(pick(usual)) as Record<string, unknown>;
    const edits = Math.floor(next() * 3);
    for (let e = 0; e < edits; e++) {
      const k = pick(KEYS);
      if (next() < 0.2) delete base[k];
      else base[k] = structuredClone(pick(VALUES));
    }
    if (agree(base) === 'fast') fast++;
    else {
      // the schema's verdict, word for word, whichever decoder ran
      const text = Buffer.from(JSON.stringify(base));
      let viaBody: string;
      try {
        viaBody = JSON.stringify(decodeBody(text, serviceRegisterSchema));
      } catch (err) {
        viaBody = String(err);
      }
      const r = serviceRegisterSchema.safeParse(base);
      const viaSchema = r.success ? JSON.stringify(r.data) : 'error';
      if (viaSchema === 'error') assert.match(viaBody, /Request decode failed/);
      else assert.equal(viaBody, viaSchema);
    }
  }
  assert.ok(fast > 500, `only ${fast} bodies took the fast path`);
});
