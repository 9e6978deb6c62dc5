/** The SDK measures how long a registry change took to reach its cache (Phare's X-Phare-Index-Time). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { consulResolver, createDiscovery } from '../../src/index.ts';
import { startTestAgent } from '../../src/testing/index.ts';
import { waitFor } from '../helpers/agent.ts';

test('phare_discovery_update_lag_seconds observes each change after the first answer', async () => {
  await using agent = await startTestAgent();
  const register = async (id: string) => {
    const res = await fetch(`${agent.url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'lag', ID: id, Port: 5000, Address: '127.0.0.1' }),
    });
    assert.equal(res.status, 200);
  };
  await register('lag-1');
  const metrics = new Registry();
  const discovery = createDiscovery({ resolver: consulResolver({ address: agent.address }), metrics });
  try {
    assert.equal((await discovery.instances('lag')).length, 1);
    await register('lag-2');
    await waitFor(async () => (await discovery.instances('lag')).length === 2, 10_000, 'the second instance');
    const json = await metrics.getSingleMetricAsString('phare_discovery_update_lag_seconds');
    const count = Number(/phare_discovery_update_lag_seconds_count\{service="lag"\} (\d+)/.exec(json)?.[1]);
    const sum = Number(/phare_discovery_update_lag_seconds_sum\{service="lag"\} ([\d.e-]+)/.exec(json)?.[1]);
    assert.equal(count, 1, json);
    assert.ok(sum >= 0 && sum < 10, `lag ${sum}s is a plausible duration`);
  } finally {
    await discovery.close();
  }
});
