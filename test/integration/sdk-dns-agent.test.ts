/** The SDK's `dns` resolver against the agent's own DNS interface: instances and ports through SRV. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createDiscovery, dnsResolver } from '../../src/index.ts';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';

let agent: Awaited<ReturnType<typeof startAgentInProcess>>;

async function put(path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${agent.url}${path}`, {
    method: 'PUT',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

before(async () => {
  agent = await startAgentInProcess({ flags: { 'dns-addr': '127.0.0.1:0' } });
  for (const [i, ip] of ['127.0.0.21', '127.0.0.22'].entries()) {
    await put('/v1/agent/service/register', {
      Name: 'orders',
      ID: `orders-${i}`,
      Address: ip,
      Port: 7100 + i,
      Tags: ['blue'],
      Check: { CheckID: `orders-${i}`, TTL: '60s', Status: 'passing' },
    });
  }
});
after(() => agent.close());

test('dnsResolver finds instances and their ports through the agent SRV answers', async () => {
  const servers = [`${agent.dnsAddress?.host}:${agent.dnsAddress?.port}`];
  const discovery = createDiscovery({ resolver: dnsResolver({ servers, families: [4], minTtlMs: 100 }) });
  try {
    const list = await discovery.instances('orders');
    assert.deepEqual(list.map((i) => `${i.address}:${i.port}`).sort(), [
      '127.0.0.21:7100',
      '127.0.0.22:7101',
    ]);
    // a tag narrows the name to <tag>.<service>.service.consul
    assert.equal((await discovery.instances('orders', { tag: 'blue' })).length, 2);
    // a check going critical leaves the DNS answer, and the resolver follows after its TTL
    await put('/v1/agent/check/fail/orders-0');
    await waitFor(
      async () => (await discovery.instances('orders')).length === 1,
      10_000,
      'the failed instance to leave',
    );
    assert.equal((await discovery.instances('orders'))[0]?.port, 7101);
  } finally {
    await discovery.close?.();
  }
});
