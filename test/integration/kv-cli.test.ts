/** `phare kv get|put|delete` against a real agent, with Consul's CLI flags (one dash) and output lines. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { createConsulClient } from '../../src/index.ts';
import { startAgentInProcess } from '../helpers/agent.ts';

let agent: Awaited<ReturnType<typeof startAgentInProcess>>;
before(async () => {
  agent = await startAgentInProcess();
});
after(async () => {
  await agent.close();
});

async function kv(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(['kv', ...args], {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env: { PHARE_HTTP_ADDR: agent.url },
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

test('phare kv put/get/delete, shaped like consul kv', async () => {
  assert.deepEqual(await kv('put', 'app/db/url', 'postgres://x'), {
    code: 0,
    stdout: 'Success! Data written to: app/db/url\n',
    stderr: '',
  });
  await kv('put', 'app/db/pool', '5');
  assert.equal((await kv('get', 'app/db/url')).stdout, 'postgres://x\n');
  assert.equal((await kv('get', '-recurse', 'app/')).stdout, 'app/db/pool:5\napp/db/url:postgres://x\n');
  const missing = await kv('get', 'app/nope');
  assert.deepEqual([missing.code, missing.stderr], [1, 'Error! No key exists at: app/nope\n']);
  // -cas -modify-index: 0 means "only if absent"
  const cas = await kv('put', '-cas', '-modify-index=0', 'app/db/url', 'other');
  assert.deepEqual([cas.code, cas.stderr], [1, 'Error! Did not write to app/db/url: CAS failed\n']);
  const client = createConsulClient({ address: agent.url });
  const { value } = await client.kv.get('app/db/url');
  await client.close();
  const idx = value?.[0]?.ModifyIndex ?? 0;
  assert.equal((await kv('put', '-cas', `-modify-index=${idx}`, 'app/db/url', 'new')).code, 0);
  assert.equal((await kv('get', 'app/db/url')).stdout, 'new\n');
  assert.equal((await kv('delete', 'app/db/url')).stdout, 'Success! Deleted key: app/db/url\n');
  assert.equal((await kv('delete', '-recurse', 'app/')).stdout, 'Success! Deleted keys with prefix: app/\n');
  assert.equal((await kv('get', '-recurse', 'app/')).code, 1);
  const bad = await kv('put', '-cas', 'k', 'v');
  assert.deepEqual([bad.code, bad.stderr], [2, 'phare: Must specify -modify-index with -cas!\n']);
});
