/**
 * The python-consul KV story (python/kv_story.py: Debian's python3-consul 0.7.1, the client Patroni uses) and
 * what it must show, shared by the single-agent interop test and the cluster one (a client on each of two
 * agents).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'python', 'kv_story.py');

/** Why the story cannot run here, or undefined. */
export function pythonConsulMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found (install Debian python3 and python3-consul)`;
  const r = spawnSync(PYTHON, ['-c', 'import consul'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${PYTHON} cannot import consul (apt-get install python3-consul)`;
}

// biome-ignore lint/suspicious/noExplicitAny: the script's JSON output, checked field by field below
export type StoryOutput = Record<string, any>;

/**
 * Runs the story: the first client on `urlA`, the second on `urlB` (default the same agent). execFile, not
 * execFileSync: an agent running in this process must keep serving the script.
 */
export function runPythonKvStory(urlA: string, urlB = urlA): Promise<StoryOutput> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, urlA, urlB], { timeout: 60_000 }, (err, so, se) => {
      if (err) reject(new Error(`kv_story.py failed (${err.message}):\n${se}\n${so}`));
      else resolve(JSON.parse(so) as StoryOutput);
    });
  });
}

/** The story's parts, each with what it must show. */
export const pythonKvStoryChecks: Record<string, (out: StoryOutput) => void> = {
  'binary values with flags, recurse, keys with a separator, a missing key': (out) => {
    assert.equal(out['put_bin'], true);
    assert.equal(out['bin_roundtrip'], true, 'all 256 byte values come back');
    assert.equal(out['bin_flags'], 42);
    assert.equal(out['index_positive'], true);
    assert.deepEqual(out['recurse_keys'], ['py/bin', 'py/cfg/a', 'py/cfg/b']);
    assert.deepEqual(out['keys_sep'], ['py/bin', 'py/cfg/']);
    assert.deepEqual(out['missing'], [null, true], 'a missing key is None, with an index');
  },
  'cas races between two clients — exactly one wins every round': (out) => {
    assert.deepEqual(out['cas_rounds'], Array(5).fill([false, true]));
  },
  'a blocking get is woken by another client writing its key, not by other keys': (out) => {
    assert.equal(out['watch_still_waiting'], true, 'a write elsewhere did not wake it');
    assert.equal(out['watch_value'], 'hello');
    assert.equal(out['watch_fast'], true);
  },
  'sessions create, info, renew, list, destroy; renew of a gone session is NotFound': (out) => {
    assert.deepEqual(out['session_info'], ['py-s', '30s', 'delete', 0]);
    assert.equal(out['renew'], true);
    assert.equal(out['in_list'], true);
    assert.equal(out['destroy'], true);
    assert.equal(out['renew_gone'], 'NotFound');
  },
  'a lock held by one client is taken over once its session is invalidated by a failing check': (out) => {
    assert.equal(out['lock_holder'], true);
    assert.equal(out['lock_taker_blocked'], false, 'never held twice');
    assert.equal(out['lock_taken_over'], true);
    assert.deepEqual(out['lock_after'], ['taker', true, 2], 'value written by the taker, LockIndex 2');
    assert.equal(out['holder_gone'], true);
    assert.equal(out['release'], true);
    assert.equal(out['delete_recurse'], true);
    assert.equal(out['after_delete'], null);
  },
};
