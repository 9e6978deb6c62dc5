/**
 * Interop: KV, sessions and locks through the npm `consul` client against a real Phare agent with its default
 * sqlite store (the cluster run of the same story: test/cluster/interop.test.ts).
 */
import { after, test } from 'node:test';
import { startAgentInProcess, tempDir } from '../helpers/agent.ts';
import { npmKvStory } from './kv-npm-story.ts';

const dir = tempDir('phare-kv-npm-');
const agent = await startAgentInProcess({ dataDir: dir.path });
after(async () => {
  await agent.close();
  dir.remove();
});

test('npm consul: KV set/get/keys/del, a CAS race, sessions, a lock taken over, a watch woken (sqlite agent)', () =>
  npmKvStory(agent.httpAddress.port, agent.httpAddress.port, 'npm/'));
