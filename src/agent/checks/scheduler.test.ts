import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import type { Clock } from '../clock.ts';
import { IntervalScheduler } from './scheduler.ts';

/** A deterministic random source (LCG) so spread assertions never flake. */
function seeded(seed = 42): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Lets the jobs' promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('IntervalScheduler', () => {
  test('first runs are staggered over [0, interval)', async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const s = new IntervalScheduler({ clock, maxConcurrent: 10_000, random: seeded() });
    const first = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const key = `c${i}`;
      s.add(key, 10_000, async () => {
        if (!first.has(key)) first.set(key, clock.now());
      });
    }
    await clock.tick(10_000, 100);
    assert.equal(first.size, 1000);
    const buckets = new Array<number>(10).fill(0);
    for (const at of first.values()) {
      assert.ok(at >= t0 && at < t0 + 10_000, `first run at +${at - t0} ms`);
      buckets[Math.floor((at - t0) / 1000)]! += 1;
    }
    // 1000 checks over 10 buckets: no second holds the herd
    for (const b of buckets) assert.ok(b > 50 && b < 150, `bucket sizes ${buckets.join(',')}`);
    await s.stop();
  });

  test('runs every interval from the scheduled time, not drifting by run duration', async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const s = new IntervalScheduler({ clock, maxConcurrent: 10, random: () => 0.25 });
    const starts: number[] = [];
    let gate = deferred();
    s.add('a', 1000, async () => {
      starts.push(clock.now() - t0);
      await gate.promise;
    });
    await clock.tick(250, 50);
    for (let i = 0; i < 3; i++) {
      await clock.tick(300, 50); // each run takes 300 ms of (fake) time
      gate.resolve();
      gate = deferred();
      await settle();
      await clock.tick(700, 50);
    }
    assert.deepEqual(starts, [250, 1250, 2250, 3250]);
    gate.resolve();
    await s.stop();
  });

  test('a job still running when due is skipped, not stacked', async () => {
    const clock = new FakeClock();
    const s = new IntervalScheduler({ clock, maxConcurrent: 10, random: () => 0 });
    let runs = 0;
    const gate = deferred();
    s.add('a', 1000, async () => {
      runs++;
      if (runs === 1) await gate.promise;
    });
    await clock.tick(3500, 100);
    assert.equal(runs, 1);
    assert.equal(s.skipped, 3);
    gate.resolve();
    await settle();
    await clock.tick(1000, 100);
    assert.equal(runs, 2);
    await s.stop();
  });

  test('caps probes in flight and starts waiting ones as slots free up', async () => {
    const clock = new FakeClock();
    const s = new IntervalScheduler({ clock, maxConcurrent: 3, random: () => 0 });
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const started: string[] = [];
    for (let i = 0; i < 10; i++) {
      const key = `c${i}`;
      gates.set(key, deferred());
      s.add(key, 60_000, async () => {
        started.push(key);
        await gates.get(key)!.promise;
      });
    }
    await clock.tick(10, 10);
    assert.equal(s.running, 3);
    assert.deepEqual(started, ['c0', 'c1', 'c2']); // same due time: first come, first served
    clock.advance(40); // the waiting ones are 40 ms late when they start
    gates.get('c1')!.resolve();
    await settle();
    assert.equal(s.running, 3);
    assert.deepEqual(started, ['c0', 'c1', 'c2', 'c3']);
    for (const g of gates.values()) g.resolve();
    for (let i = 0; i < 10 && started.length < 10; i++) await settle();
    assert.equal(started.length, 10);
    assert.equal(s.lateness().max >= 40, true);
    await s.stop();
  });

  test('counts the runs that waited for a slot, per target and in all', async () => {
    const clock = new FakeClock();
    const s = new IntervalScheduler({ clock, maxConcurrent: 1, maxSlow: 1, random: () => 0 });
    const open: (() => void)[] = [];
    const job = () => new Promise<void>((r) => open.push(r));
    s.add('a', 10_000, job, 'a:1');
    s.add('b', 10_000, job, 'b:1');
    await clock.tick(1, 1);
    assert.equal(open.length, 1, 'one slot: one run in flight');
    // the other is counted as it starts waiting, not when it finally runs: a run stuck in a queue shows
    assert.equal(s.slotWaits('b:1') + s.slotWaits('a:1'), 1);
    assert.equal(s.slotWaits(), 1);
    (open.shift() as () => void)();
    await settle();
    assert.equal(open.length, 1, 'the second started when the slot freed');
    assert.equal(s.slotWaits(), 1, 'counted once');
    assert.equal(s.slotWaits('c:1'), 0, 'an unknown target');
    (open.shift() as () => void)();
    await s.stop();
  });

  test('remove() and stop() abort the run in flight', async () => {
    const clock = new FakeClock();
    const s = new IntervalScheduler({ clock, maxConcurrent: 10, random: () => 0 });
    const aborted: string[] = [];
    const job = (key: string) => (signal: AbortSignal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => {
          aborted.push(key);
          resolve();
        }),
      );
    s.add('a', 1000, job('a'));
    s.add('b', 1000, job('b'));
    await clock.tick(1, 1);
    assert.equal(s.running, 2);
    s.remove('a');
    assert.deepEqual(aborted, ['a']);
    assert.equal(s.has('a'), false);
    await s.stop();
    assert.deepEqual(aborted, ['a', 'b']);
    assert.equal(s.running, 0);
    assert.equal(clock.pending, 0);
  });

  test('re-adding a key replaces its schedule', async () => {
    const clock = new FakeClock();
    const t0 = clock.now();
    const s = new IntervalScheduler({ clock, maxConcurrent: 10, random: () => 0.5 });
    const runs: string[] = [];
    s.add('a', 1000, async () => void runs.push(`old@${clock.now() - t0}`));
    await clock.tick(200, 100);
    s.add('a', 2000, async () => void runs.push(`new@${clock.now() - t0}`));
    assert.equal(s.size, 1);
    await clock.tick(4000, 100);
    assert.deepEqual(runs, ['new@1200', 'new@3200']);
    await s.stop();
  });

  test('tracks lateness against the schedule', async () => {
    const fake = new FakeClock();
    // a clock whose timers fire 25 ms late, like a busy event loop
    const late: Clock = {
      now: () => fake.now(),
      setTimeout: (fn, ms) => fake.setTimeout(fn, ms + 25),
      clearTimeout: (t) => fake.clearTimeout(t),
    };
    const s = new IntervalScheduler({ clock: late, maxConcurrent: 10, random: () => 0 });
    s.add('a', 1000, async () => {});
    await fake.tick(5000, 5);
    const l = s.lateness();
    assert.equal(l.p50, 25);
    assert.equal(l.max, 25);
    await s.stop();
  });

  test('keeps up with 10,000 checks at a 10 s interval', async () => {
    const clock = new FakeClock();
    const s = new IntervalScheduler({ clock, maxConcurrent: 512, random: seeded(7) });
    let runs = 0;
    for (let i = 0; i < 10_000; i++) s.add(`c${i}`, 10_000, async () => void runs++);
    await clock.tick(29_999, 50);
    assert.equal(runs, 30_000); // three runs each: the first lands in [0, 10 s)
    assert.equal(s.skipped, 0);
    assert.equal(s.lateness().max, 0);
    await s.stop();
  });

  describe('slow targets cannot take the slots of healthy ones (issue 11 §7)', () => {
    /** Jobs whose runs wait until the test releases them, per target. */
    function gated(s: IntervalScheduler, target: string, n: number, intervalMs = 1000) {
      const open: (() => void)[] = [];
      let starts = 0;
      for (let i = 0; i < n; i++) {
        s.add(
          `${target}#${i}`,
          intervalMs,
          () => {
            starts++;
            return new Promise<void>((r) => open.push(r));
          },
          target,
        );
      }
      return {
        get starts() {
          return starts;
        },
        get inFlight() {
          return open.length;
        },
        release() {
          for (const r of open.splice(0)) r();
        },
      };
    }

    test('a new target gets one probe in flight until it answers; a fast one is bounded by its budget only', async () => {
      const clock = new FakeClock();
      const s = new IntervalScheduler({ clock, maxConcurrent: 100, maxPerTarget: 4, random: () => 0 });
      const a = gated(s, 'a:1', 10);
      await clock.tick(10, 10);
      assert.equal(a.inFlight, 1, 'a target that never answered holds one slot');
      a.release(); // answered at once: a fast target
      await settle();
      await settle();
      assert.equal(a.inFlight, 9, 'then its waiting jobs all run: no per-target cap on a fast target');
      a.release();
      await s.stop();
    });

    /** Jobs whose probe takes `durationMs(run)` of fake time; records when each job started. */
    function simulated(
      clock: FakeClock,
      s: IntervalScheduler,
      target: string,
      n: number,
      intervalMs: number,
      durationMs: (run: number) => number,
      /** Counts in flight across several targets: now and at most. */
      shared: { now: number; max: number } = { now: 0, max: 0 },
    ) {
      const starts = new Map<string, number[]>();
      let inFlight = 0;
      let maxInFlight = 0;
      for (let i = 0; i < n; i++) {
        const key = `${target}#${i}`;
        starts.set(key, []);
        s.add(
          key,
          intervalMs,
          async (signal) => {
            const list = starts.get(key) as number[];
            list.push(clock.now());
            inFlight++;
            shared.now++;
            shared.max = Math.max(shared.max, shared.now);
            maxInFlight = Math.max(maxInFlight, inFlight);
            await new Promise<void>((r) => {
              // settles on abort too, as a real probe does (stop() waits for runs in flight)
              clock.setTimeout(r, durationMs(list.length));
              signal.addEventListener('abort', () => r(), { once: true });
            });
            inFlight--;
            shared.now--;
          },
          target,
        );
      }
      return {
        starts,
        get maxInFlight() {
          return maxInFlight;
        },
        /** Largest gap between two starts of one job, minus the interval. */
        worstLateness(fromMs: number): number {
          let worst = 0;
          for (const list of starts.values()) {
            const l = list.filter((t) => t >= fromMs);
            for (let k = 1; k < l.length; k++)
              worst = Math.max(worst, (l[k] as number) - (l[k - 1] as number) - intervalMs);
          }
          return worst;
        },
      };
    }

    test('slow and dead targets hold at most maxSlow slots; a healthy target keeps its cadence', async () => {
      const clock = new FakeClock();
      const t0 = clock.now();
      const s = new IntervalScheduler({
        clock,
        maxConcurrent: 16,
        maxSlow: 8,
        maxPerTarget: 100,
        slowMs: 1000,
        random: seeded(3),
      });
      // 200 checks against a target answering in 9 s and 10 dead targets timing out after 10 s each: 25× the slots
      const held = { now: 0, max: 0 }; // slow and dead probes in flight at once
      const slow = simulated(clock, s, 'slow:1', 200, 1000, () => 9000, held);
      const dead = Array.from({ length: 10 }, (_, i) =>
        simulated(clock, s, `dead:${i}`, 20, 1000, () => 10_000, held),
      );
      const canary = simulated(clock, s, 'ok:1', 10, 1000, () => 5);
      await clock.tick(60_000, 20);
      for (const list of canary.starts.values())
        assert.ok(list.length >= 58, `a canary ran ${list.length} times in 60 s`);
      assert.ok(
        canary.worstLateness(t0 + 2000) < 1000,
        `canary lateness up to ${canary.worstLateness(t0 + 2000)} ms`,
      );
      const slowSlots = held.max;
      const slowRuns = [...slow.starts.values()].reduce((n, l) => n + l.length, 0);
      assert.ok(slowRuns > 0, 'the slow target is still probed');
      assert.ok(
        dead.every((d) => d.maxInFlight > 0),
        'every dead target is still probed',
      );
      // at once: the slow budget plus the new targets' probes on fast slots (half the fast budget at most)
      assert.ok(slowSlots <= 8 + 4, `slow and dead targets held ${slowSlots} slots at once`);
      // counted, not timed: no canary run ever waited for a slot, while the slow and dead ones queued
      assert.equal(s.slotWaits('ok:1'), 0, 'canary runs that waited for a slot');
      assert.ok(s.slotWaits('slow:1') > 0 && s.slotWaits('dead:0') > 0, 'the slow targets never queued');
      assert.ok(s.slotWaits() >= s.slotWaits('slow:1') + s.slotWaits('dead:0'));
      await s.stop();
    });

    test('new dead targets taking every free fast slot never make a known-fast check wait for one', async () => {
      const clock = new FakeClock();
      const s = new IntervalScheduler({
        clock,
        maxConcurrent: 64,
        maxSlow: 32,
        slowMs: 1000,
        random: seeded(7),
      });
      const canary = simulated(clock, s, 'ok:1', 10, 1000, () => 5);
      await clock.tick(1500, 20); // the canaries' target has answered: it is known fast
      const waitsBefore = s.slotWaits('ok:1');
      // 400 checks against 400 distinct targets that never answer (10 s timeouts): new targets take free
      // fast slots for their first probe, 6× the slots in all
      const dead = Array.from({ length: 400 }, (_, i) =>
        simulated(clock, s, `dead:${i}`, 1, 1000, () => 10_000),
      );
      await clock.tick(20_000, 20);
      assert.equal(s.slotWaits('ok:1') - waitsBefore, 0, 'canary runs that waited for a slot');
      assert.ok(s.slotWaits() > 0, 'no run ever waited: the slots were never full');
      for (const list of canary.starts.values())
        assert.ok(list.length >= 20, `a canary ran ${list.length} times`);
      assert.ok(dead.some((d) => d.maxInFlight > 0));
      assert.ok(s.running <= 3 * 64, `${s.running} in flight`);
      await s.stop();
    });

    test('a healthy target that starts hanging cannot hold the fast budget past slowMs', async () => {
      const clock = new FakeClock();
      const t0 = clock.now();
      const s = new IntervalScheduler({
        clock,
        maxConcurrent: 16,
        maxSlow: 8,
        maxPerTarget: 100,
        slowMs: 1000,
        random: seeded(5),
      });
      // 100 checks against a target that answers fast for 5 runs, then hangs for 30 s each time
      simulated(clock, s, 'hang:1', 100, 1000, (run) => (run <= 5 ? 5 : 30_000));
      const canary = simulated(clock, s, 'ok:1', 10, 1000, () => 5);
      await clock.tick(40_000, 20);
      assert.ok(
        canary.worstLateness(t0 + 2000) < 1000 + 50,
        `canary lateness up to ${canary.worstLateness(t0 + 2000)} ms`,
      );
      assert.ok(s.running <= 2 * 16 + 8, `${s.running} in flight`);
      await s.stop();
    });
  });
});
