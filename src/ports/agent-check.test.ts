import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROJECT_PORTS } from '../../test/helpers/ports-project.ts';
import { startTestAgent } from '../testing/index.ts';
import { agentUrl, checkAgent } from './agent-check.ts';
import { parsePorts } from './model.ts';

/** A real Phare agent with these services registered (through its HTTP API, as any client would). */
async function agentWith(
  services: Record<string, { ID: string; Service: string; Port: number; Address?: string }>,
) {
  const agent = await startTestAgent();
  for (const s of Object.values(services)) {
    const res = await fetch(`${agent.url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ ID: s.ID, Name: s.Service, Port: s.Port, Address: s.Address }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  return { url: agent.url, server: { close: (cb?: () => void) => void agent.close().then(cb) } };
}

const model = parsePorts(PROJECT_PORTS, '/p/ports.yaml').model!;

test('agent services on their ports pass; a wrong port is an error, an unknown service a warning', async () => {
  const { url, server } = await agentWith({
    'api-1': { ID: 'api-1', Service: 'api', Port: 18000, Address: '127.0.0.1' },
    'bus-1': { ID: 'bus-1', Service: 'bus', Port: 4000 },
    'redis-1': { ID: 'redis-1', Service: 'redis', Port: 15010 },
    'bus-2': { ID: 'bus-2', Service: 'bus', Port: 18099 },
    'x-1': { ID: 'x-1', Service: 'mystery', Port: 1234 },
  });
  try {
    const problems = await checkAgent(model, { url });
    assert.equal(problems.length, 2, JSON.stringify(problems, null, 2));
    const wrong = problems.find((p) => p.severity === 'error')!;
    assert.match(wrong.message, /registered service bus \(id bus-2\) uses port 18099/);
    assert.equal(wrong.key, 'components.bus.ports.production');
    assert.equal(wrong.expected, '18010 bus (production), 19010 bus (development)');
    assert.equal(problems.find((p) => p.severity === 'warning')!.found, 'mystery port 1234');

    // --env narrows: api on its production port is wrong for development.
    const dev = await checkAgent(model, { url, env: 'development' });
    assert.ok(dev.some((p) => p.severity === 'error' && /service api/.test(p.message)));
  } finally {
    server.close();
  }
});

test('an agent that does not answer is an error naming the URL', async () => {
  const { url, server } = await agentWith({});
  await new Promise<void>((r) => server.close(() => r()));
  const problems = await checkAgent(model, { url, timeoutMs: 2000 });
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.rule, 'agent');
  assert.equal(problems[0]!.file, `${url}/v1/agent/services`);
});

test('agent URL: flag, PHARE_HTTP_ADDR, default', () => {
  assert.equal(agentUrl('http://a:1/', {}), 'http://a:1');
  assert.equal(agentUrl(undefined, { PHARE_HTTP_ADDR: '127.0.0.1:8501' }), 'http://127.0.0.1:8501');
  assert.equal(agentUrl(undefined, {}), 'http://127.0.0.1:8500');
  // the same order as the SDK: CONSUL_HTTP_ADDR counts
  assert.equal(agentUrl(undefined, { CONSUL_HTTP_ADDR: '10.0.0.5:8500' }), 'http://10.0.0.5:8500');
});
