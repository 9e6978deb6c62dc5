/**
 * Interop: KV, sessions and locks through Debian's python3-consul 0.7.1 — the client library Patroni uses —
 * against a real Phare agent. python/kv_story.py runs the story (two clients, threads for the races and the
 * blocking read) and prints what it saw; each test below asserts one part of it.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startAgentInProcess } from '../helpers/agent.ts';
import { dependencySkip } from '../helpers/requires.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'python', 'kv_story.py');

function pythonConsulMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found (install Debian python3 and python3-consul)`;
  const r = spawnSync(PYTHON, ['-c', 'import consul'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${PYTHON} cannot import consul (apt-get install python3-consul)`;
}
const skip = dependencySkip(pythonConsulMissing());
const opts = { skip };

let agent: Awaited<ReturnType<typeof startAgentInProcess>> | undefined;
// biome-ignore lint/suspicious/noExplicitAny: the script's JSON output, checked field by field below
let out: Record<string, any> = {};

before(async () => {
  if (skip) return;
  agent = await startAgentInProcess();
  // execFile, not execFileSync: the agent runs in this process and must keep serving the script
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, agent?.url ?? ''], { timeout: 60_000 }, (err, so, se) => {
      if (err) reject(new Error(`kv_story.py failed (${err.message}):\n${se}\n${so}`));
      else resolve(so);
    });
  });
  out = JSON.parse(stdout);
});
after(async () => {
  await agent?.close();
});

test('python-consul: binary values with flags, recurse, keys with a separator, a missing key', opts, () => {
  assert.equal(out['put_bin'], true);
  assert.equal(out['bin_roundtrip'], true, 'all 256 byte values come back');
  assert.equal(out['bin_flags'], 42);
  assert.equal(out['index_positive'], true);
  assert.deepEqual(out['recurse_keys'], ['py/bin', 'py/cfg/a', 'py/cfg/b']);
  assert.deepEqual(out['keys_sep'], ['py/bin', 'py/cfg/']);
  assert.deepEqual(out['missing'], [null, true], 'a missing key is None, with an index');
});

test('python-consul: cas races between two clients — exactly one wins every round', opts, () => {
  assert.deepEqual(out['cas_rounds'], Array(5).fill([false, true]));
});

test(
  'python-consul: a blocking get is woken by another client writing its key, not by other keys',
  opts,
  () => {
    assert.equal(out['watch_still_waiting'], true, 'a write elsewhere did not wake it');
    assert.equal(out['watch_value'], 'hello');
    assert.equal(out['watch_fast'], true);
  },
);

test(
  'python-consul: sessions create, info, renew, list, destroy; renew of a gone session is NotFound',
  opts,
  () => {
    assert.deepEqual(out['session_info'], ['py-s', '30s', 'delete', 0]);
    assert.equal(out['renew'], true);
    assert.equal(out['in_list'], true);
    assert.equal(out['destroy'], true);
    assert.equal(out['renew_gone'], 'NotFound');
  },
);

test(
  'python-consul: a lock held by one client is taken over once its session is invalidated by a failing check',
  opts,
  () => {
    assert.equal(out['lock_holder'], true);
    assert.equal(out['lock_taker_blocked'], false, 'never held twice');
    assert.equal(out['lock_taken_over'], true);
    assert.deepEqual(out['lock_after'], ['taker', true, 2], 'value written by the taker, LockIndex 2');
    assert.equal(out['holder_gone'], true);
    assert.equal(out['release'], true);
    assert.equal(out['delete_recurse'], true);
    assert.equal(out['after_delete'], null);
  },
);
