/**
 * Interop: KV, sessions and locks through Debian's python3-consul 0.7.1 — the client library Patroni uses —
 * against a real Phare agent. python/kv_story.py runs the story (two clients, threads for the races and the
 * blocking read) and prints what it saw; each test below asserts one part of it (kv-python-story.ts). The
 * same story with its two clients on two cluster agents: test/cluster/interop.test.ts.
 */
import { after, before, test } from 'node:test';
import { startAgentInProcess } from '../helpers/agent.ts';
import { dependencySkip } from '../helpers/requires.ts';
import {
  pythonConsulMissing,
  pythonKvStoryChecks,
  runPythonKvStory,
  type StoryOutput,
} from './kv-python-story.ts';

const skip = dependencySkip(pythonConsulMissing());
const opts = { skip };

let agent: Awaited<ReturnType<typeof startAgentInProcess>> | undefined;
let out: StoryOutput = {};

before(async () => {
  if (skip) return;
  agent = await startAgentInProcess();
  out = await runPythonKvStory(agent.url);
});
after(async () => {
  await agent?.close();
});

for (const [name, check] of Object.entries(pythonKvStoryChecks))
  test(`python-consul: ${name}`, opts, () => check(out));
