/**
 * Issue 11 point 4: names and IDs with control characters (NUL included) are refused with a 400 naming the
 * field — they once made store keys collide (`n1\0x` + `y` and `n1` + `x\0y`) — and nothing is registered.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { call } from '../fixtures/http.ts';
import { startAgentInProcess } from '../helpers/agent.ts';

let agent: Awaited<ReturnType<typeof startAgentInProcess>>;
before(async () => {
  agent = await startAgentInProcess();
});
after(() => agent.close());

const refusals: [string, string, unknown, RegExp][] = [
  [
    'agent register: Name',
    '/v1/agent/service/register',
    { Name: 'web\u0000x' },
    /Invalid service Name "web\\u0000x": control characters are not allowed \(found U\+0000 at position 3\)/,
  ],
  ['agent register: ID', '/v1/agent/service/register', { Name: 'web', ID: 'x\u0000y' }, /Invalid service ID/],
  [
    'agent register: Tags',
    '/v1/agent/service/register',
    { Name: 'web', Tags: ['ok', 'a\nb'] },
    /Invalid service Tags\[1\] "a\\nb".*U\+000A/,
  ],
  [
    'agent register: CheckID',
    '/v1/agent/service/register',
    { Name: 'web', Check: { TTL: '1m', CheckID: 'c\u007f' } },
    /Invalid check CheckID.*U\+007F/,
  ],
  [
    'agent check register: CheckID',
    '/v1/agent/check/register',
    { Name: 'c', CheckID: 'c\u0000', TTL: '1m' },
    /Invalid check CheckID/,
  ],
  [
    'catalog register: Node',
    '/v1/catalog/register',
    { Node: 'n1\u0000x', Address: '10.0.0.1', Service: { Service: 'y' } },
    /Invalid Node "n1\\u0000x"/,
  ],
  [
    'catalog register: Service ID',
    '/v1/catalog/register',
    { Node: 'n1', Address: '10.0.0.1', Service: { Service: 'x', ID: 'x\u0000y' } },
    /Invalid service ID/,
  ],
  [
    'catalog register: Check CheckID',
    '/v1/catalog/register',
    { Node: 'n1', Address: '10.0.0.1', Check: { Name: 'c', CheckID: 'c\u0000d' } },
    /Invalid check CheckID "c\\u0000d"/,
  ],
  [
    'catalog register: C1 control',
    '/v1/catalog/register',
    { Node: 'n1', Address: '10.0.0.1', Service: { Service: 'x\u0085' } },
    /U\+0085/,
  ],
];

for (const [what, path, body, message] of refusals) {
  test(`400 naming the field, nothing registered: ${what}`, async () => {
    const before = (await call(agent.url, 'GET', '/v1/catalog/services')).headers['x-consul-index'];
    const r = await call(agent.url, 'PUT', path, body);
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, message);
    assert.equal((await call(agent.url, 'GET', '/v1/catalog/services')).headers['x-consul-index'], before);
    assert.deepEqual((await call(agent.url, 'GET', '/v1/agent/services')).json(), {});
    assert.equal((await call(agent.url, 'GET', '/v1/catalog/node/n1')).json(), null);
  });
}

test('the names of the old collision register side by side once they are valid', async () => {
  // n1 + "x/y" and "n1/x" + y: under key schema 1 with '/' for NUL these were one row
  const a = await call(agent.url, 'PUT', '/v1/catalog/register', {
    Node: 'n1',
    Address: '10.0.0.1',
    Service: { Service: 's', ID: 'x/y' },
  });
  const b = await call(agent.url, 'PUT', '/v1/catalog/register', {
    Node: 'n1/x',
    Address: '10.0.0.2',
    Service: { Service: 's', ID: 'y' },
  });
  assert.equal(a.status, 200, a.text);
  assert.equal(b.status, 200, b.text);
  const nodes = (await call(agent.url, 'GET', '/v1/catalog/service/s')).json<
    { Node: string; ServiceID: string }[]
  >();
  assert.deepEqual(nodes.map((e) => `${e.Node} ${e.ServiceID}`).sort(), ['n1 x/y', 'n1/x y']);
  await call(agent.url, 'PUT', '/v1/catalog/deregister', { Node: 'n1/x', ServiceID: 'y' });
  const left = (await call(agent.url, 'GET', '/v1/catalog/service/s')).json<
    { Node: string; ServiceID: string }[]
  >();
  assert.deepEqual(
    left.map((e) => `${e.Node} ${e.ServiceID}`),
    ['n1 x/y'],
  );
  await call(agent.url, 'PUT', '/v1/catalog/deregister', { Node: 'n1' });
  await call(agent.url, 'PUT', '/v1/catalog/deregister', { Node: 'n1/x' });
});
