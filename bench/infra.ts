/**
 * `phare test` on a real engine (a private dockerd with the local postgres:16 / redis:7 images of
 * test/helpers/infra-images.ts), with its references in the same run:
 *
 * 1. the example monorepo's integration tests, three components (notes + PostgreSQL, bus on the host,
 *    cache + Redis): `--parallel 3` against `--parallel 1` (wall time);
 * 2. `phare test notes --integration` against the same done by hand, as the seed's Makefile does it but
 *    without its `sleep 3` and with the least work a person can do: notes' test file on a fixed free port,
 *    `docker-compose up -d`, poll `docker inspect` on the container's known name until healthy (every
 *    100 ms), the same test command with DATABASE_URL, `docker-compose down -v -t 0`. Target: phare's
 *    overhead ≤ 10 %.
 *
 * Runs alternate (hand, phare, hand, phare, …) so a change in the machine's load hits both sides; the
 * medians are compared. Not pinned: dockerd, containerd and Compose are the bulk of the work and run
 * wherever the kernel puts them. Run alone: `npx node bench/infra.ts` (BENCH_INFRA_RUNS, default 5; 1
 * with BENCH_QUICK=1).
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DOCKER_CLI, startDockerd } from '../test/helpers/docker.ts';
import { infraImages } from '../test/helpers/infra-images.ts';
import { fmt, isMain, machine, median, QUICK, REPO_ROOT, table, verdict } from './lib.ts';

const execFileP = promisify(execFile);
const RUNS = QUICK ? 1 : Number(process.env.BENCH_INFRA_RUNS ?? 5);
const EXAMPLE = join(REPO_ROOT, 'examples', 'monorepo');

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO_ROOT): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    child.stderr.on('data', (d) => {
      out += String(d);
    });
    child.once('close', (code) =>
      code === 0
        ? resolve(performance.now() - t0)
        : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}\n${out}`)),
    );
  });
}

export async function run(): Promise<string> {
  const engine = await startDockerd();
  try {
    await infraImages(engine);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DOCKER_HOST: engine.endpoint,
      PHARE_DOCKER_CLI: DOCKER_CLI,
      NODE_TEST_CONTEXT: undefined,
    };
    const phare = (...args: string[]) =>
      timed(
        process.execPath,
        ['--conditions=phare-source', join(REPO_ROOT, 'bin', 'phare.js'), ...args],
        env,
      );
    // the reference does the least a person can: a copy of notes' test file on a fixed free port (so no
    // `compose port` call), up, poll `docker inspect` on the container's known name, the command, down -v
    const handFile = join(tmpdir(), `phare-bench-hand-${process.pid}.yaml`);
    const handPort = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    writeFileSync(
      handFile,
      readFileSync(join(EXAMPLE, 'notes', 'docker-compose.test.yaml'), 'utf8').replace(
        '- "5432"',
        `- "127.0.0.1:${handPort}:5432"`,
      ),
    );
    const compose = async (...args: string[]) =>
      (await execFileP('docker-compose', args, { env, cwd: join(EXAMPLE, 'notes') })).stdout.trim();
    const byHand = async (i: number) => {
      const t0 = performance.now();
      const project = `bench-hand-${i}`;
      const p = ['-p', project, '-f', handFile, '--project-directory', join(EXAMPLE, 'notes')];
      await compose(...p, 'up', '-d');
      try {
        for (;;) {
          const { stdout } = await execFileP(DOCKER_CLI, [
            '-H',
            engine.endpoint,
            'inspect',
            '-f',
            '{{.State.Health.Status}}',
            `${project}_postgres_1`,
          ]);
          if (stdout.trim() === 'healthy') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await timed(
          'sh',
          ['-c', 'node --test tests/integration/*.test.js'],
          { ...env, DATABASE_URL: `postgresql://notes:test_password@127.0.0.1:${handPort}/notes_test` },
          join(EXAMPLE, 'notes'),
        );
      } finally {
        await compose(...p, 'down', '-v', '-t', '0');
      }
      return performance.now() - t0;
    };
    // warm-up: Compose's first start, page cache, the images' first layers
    await phare('test', 'notes', '--integration', '--root', EXAMPLE);
    const hand: number[] = [];
    const ours: number[] = [];
    const seq: number[] = [];
    const par: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      hand.push(await byHand(i));
      ours.push(await phare('test', 'notes', '--integration', '--root', EXAMPLE));
      seq.push(await phare('test', '--integration', '--parallel', '1', '--root', EXAMPLE));
      par.push(await phare('test', '--integration', '--parallel', '3', '--root', EXAMPLE));
    }
    const s = (ms: number) => `${fmt(ms / 1000, 2)} s`;
    const overhead = median(ours) / median(hand) - 1;
    const speedup = median(seq) / median(par);
    return [
      `### phare test (issue 17): ${RUNS} runs each, medians`,
      '',
      table(
        ['benchmark', 'phare test', 'reference (same run)', 'ratio / target'],
        [
          [
            'notes integration: PostgreSQL up, healthy, tests, `down -v`',
            s(median(ours)),
            `by hand (compose up, inspect poll, command, down -v): ${s(median(hand))}`,
            `overhead **${fmt(overhead * 100, 1)} %** (target ≤ 10 %) ${verdict(overhead <= 0.1)}`,
          ],
          [
            "three components' integration tests (notes+PostgreSQL, bus on host, cache+Redis)",
            `--parallel 3: ${s(median(par))}`,
            `--parallel 1: ${s(median(seq))}`,
            `**${fmt(speedup, 2)}×** faster in parallel`,
          ],
        ],
      ),
      '',
      `all runs (s): hand ${hand.map((x) => fmt(x / 1000, 2)).join(', ')}; phare ${ours.map((x) => fmt(x / 1000, 2)).join(', ')}; ` +
        `sequential ${seq.map((x) => fmt(x / 1000, 2)).join(', ')}; parallel ${par.map((x) => fmt(x / 1000, 2)).join(', ')}`,
    ].join('\n');
  } finally {
    rmSync(join(tmpdir(), `phare-bench-hand-${process.pid}.yaml`), { force: true });
    await engine.close();
  }
}

// not benchMain: it pins this process (and so dockerd, Compose and the tests) to one CPU
if (isMain(import.meta))
  process.stdout.write(`${process.env.BENCH_NO_HEADER === '1' ? '' : `${machine()}\n\n`}${await run()}\n`);
