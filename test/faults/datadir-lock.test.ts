/**
 * Issue 11 point 3: one agent per data dir. A second agent on the same `--data-dir` exits 2 naming the
 * holder's PID and touches nothing; the lock of a `kill -9`'d agent does not block its restart.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { call } from '../fixtures/http.ts';
import { type AgentProcess, spawnAgent, tempDir } from '../helpers/agent.ts';
import { agentRefusal } from '../helpers/faults.ts';

const children: AgentProcess[] = [];
const dirs: { remove(): void }[] = [];
after(() => {
  for (const c of children)
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  for (const d of dirs) d.remove();
});

const args = (dir: string) => [
  '--data-dir',
  dir,
  '--http-addr',
  '127.0.0.1:0',
  '--dns-addr',
  '',
  '--node',
  'lk',
];

test('a second agent on the same data dir exits 2 naming the first one; after kill -9 the dir is free again', async () => {
  const dir = tempDir('phare-lock-');
  dirs.push(dir);
  const first = await spawnAgent(args(dir.path));
  children.push(first);
  const reg = await call(first.url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web-1' });
  assert.equal(reg.status, 200, reg.text);

  const second = await agentRefusal(args(dir.path));
  assert.equal(second.code, 2, second.output);
  assert.match(second.output, new RegExp(`in use by another agent \\(PID ${first.child.pid}\\)`));
  assert.match(second.output, /--data-dir/);
  assert.doesNotMatch(second.output, /\n\s+at /, 'a stack trace');
  // the first agent did not notice
  assert.equal((await call(first.url, 'GET', '/v1/agent/service/web-1')).status, 200);

  first.child.kill('SIGKILL');
  await first.exited;
  const again = await spawnAgent(args(dir.path));
  children.push(again);
  assert.equal((await call(again.url, 'GET', '/v1/agent/service/web-1')).status, 200);
  again.child.kill('SIGTERM');
  assert.equal((await again.exited).code, 0);
});
