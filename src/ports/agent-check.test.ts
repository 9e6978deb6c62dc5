import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { test } from 'node:test';
import { agentUrl, checkAgent } from './agent-check.ts';
import { parsePorts } from './model.ts';
import { PROJECT_PORTS } from './testing.ts';

// A stand-in answering like Consul's GET /v1/agent/services until the Phare agent lands; the lead should
// add a test against a real `phare agent`.
async function fakeAgent(services: Record<string, unknown>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url !== '/v1/agent/services') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(services));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

const model = parsePorts(PROJECT_PORTS, '/p/ports.yaml').model!;

test('agent services on their ports pass; a wrong port is an error, an unknown service a warning', async () => {
  const { url, server } = await fakeAgent({
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
  const { url, server } = await fakeAgent({});
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
});
