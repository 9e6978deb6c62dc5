/** The DNS interface through a whole agent: HTTP registrations show up in `dig` answers at once. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startAgentInProcess } from '../helpers/agent.ts';

const exec = promisify(execFile);
let agent: Awaited<ReturnType<typeof startAgentInProcess>>;

async function dig(...args: string[]): Promise<string> {
  const { stdout } = await exec('dig', [
    `@${agent.dnsAddress?.host}`,
    '-p',
    String(agent.dnsAddress?.port),
    '+time=2',
    '+tries=1',
    ...args,
  ]);
  return stdout;
}

async function put(path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${agent.url}${path}`, {
    method: 'PUT',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

before(async () => {
  agent = await startAgentInProcess({ flags: { 'dns-addr': '127.0.0.1:0' } });
});
after(() => agent.close());

test('the agent serves DNS on --dns-addr and answers from the catalog', async () => {
  assert.ok(agent.dnsAddress && agent.dnsAddress.port > 0, 'dnsAddress is reported');
  for (const [i, ip] of ['127.0.0.11', '127.0.0.12'].entries()) {
    await put('/v1/agent/service/register', {
      Name: 'api',
      ID: `api-${i}`,
      Address: ip,
      Port: 9000 + i,
      Tags: ['v2'],
      Check: { CheckID: `api-${i}-ttl`, TTL: '60s', Status: 'passing' },
    });
  }
  const a = (await dig('api.service.consul', 'A', '+short')).trim().split('\n').sort();
  assert.deepEqual(a, ['127.0.0.11', '127.0.0.12']);
  const srv = (await dig('_api._v2.service.consul', 'SRV', '+short')).trim().split('\n').sort();
  assert.equal(srv.length, 2);
  assert.match(srv[0] as string, /^1 1 900[01] [0-9a-f]{8}\.addr\.dc1\.consul\.$/);
  assert.match(await dig('api.service.consul', 'AAAA'), /status: NOERROR/);
  assert.match(await dig('nope.service.consul', 'A'), /status: NXDOMAIN/);
  assert.match(await dig('example.com', 'A'), /status: REFUSED/);
  assert.match(await dig('test-node.node.consul', 'A', '+short'), /127\.0\.0\.1/);
});

test('a check going critical removes the instance from the next answer; deregistration too', async () => {
  await put('/v1/agent/check/fail/api-0-ttl?note=down');
  assert.deepEqual((await dig('api.service.consul', 'A', '+short')).trim().split('\n'), ['127.0.0.12']);
  await put('/v1/agent/check/pass/api-0-ttl');
  assert.equal((await dig('api.service.consul', 'A', '+short')).trim().split('\n').length, 2);
  await put('/v1/agent/service/deregister/api-0');
  await put('/v1/agent/service/deregister/api-1');
  assert.match(await dig('api.service.consul', 'A'), /status: NXDOMAIN/);
});
