/**
 * Blocking-query fan-out benchmark (issue 2): park N blocking queries
 * `GET /v1/health/service/web?index=<current>&wait=60s` from one undici Pool with N connections (this
 * process, loadgen CPU), make one change to `web`, and time from the change request's ack until each
 * waiter has its whole answer. The same client runs against a bare node:http long-poll server (the B5
 * reference: parked responses answered with a pre-serialized body of the same size on a bump).
 * A second run changes another service (`api`) first and counts how many of web's waiters woke (must be 0).
 *
 *   npx node bench/blocking.ts
 *
 * `--serve-longpoll <bytes>` is the child mode: the node:http reference server.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import { Pool } from 'undici';
import {
  benchMain,
  exitWithParent,
  fmt,
  isMain,
  median,
  QUICK,
  quantile,
  SERVER_CPU,
  sleep,
  spawnPinned,
  startAgent,
  table,
  verdict,
} from './lib.ts';

const TARGETS_MS: Record<number, number> = { 1000: 250, 5000: 1000 };
const ROUNDS = QUICK ? 1 : 3;

/** What a side offers the client: how to read the index, count parked waiters, and make a change. */
interface Side {
  name: string;
  url: string;
  path: string;
  currentIndex(ctl: Pool): Promise<number>;
  parked(ctl: Pool): Promise<number>;
  change(ctl: Pool, round: number, service: 'web' | 'api'): Promise<void>;
}

async function getText(ctl: Pool, path: string): Promise<{ status: number; text: string; index: number }> {
  const res = await ctl.request({ method: 'GET', path });
  const text = await res.body.text();
  return { status: res.statusCode, text, index: Number(res.headers['x-consul-index'] ?? 0) };
}

function agentSide(url: string): Side {
  return {
    name: 'phare agent (--dev)',
    url,
    path: '/v1/health/service/web',
    async currentIndex(ctl) {
      return (await getText(ctl, '/v1/health/service/web')).index;
    },
    async parked(ctl) {
      const m = (await getText(ctl, '/v1/agent/metrics?format=prometheus')).text;
      return Number(/^phare_blocking_queries (\d+)/m.exec(m)?.[1] ?? 0);
    },
    async change(ctl, round, service) {
      const res = await ctl.request({
        method: 'PUT',
        path: '/v1/agent/service/register',
        body: JSON.stringify({ ID: `${service}-extra-${round}`, Name: service, Port: 9000 + round }),
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`change ${service}: HTTP ${res.statusCode}`);
    },
  };
}

function referenceSide(url: string): Side {
  return {
    name: 'bare node:http long-poll (reference)',
    url,
    path: '/v1/health/service/web',
    async currentIndex(ctl) {
      return (await getText(ctl, '/v1/health/service/web')).index;
    },
    async parked(ctl) {
      return (JSON.parse((await getText(ctl, '/stats')).text) as { parked: number }).parked;
    },
    async change(ctl) {
      const res = await ctl.request({ method: 'PUT', path: '/bump' });
      await res.body.dump();
    },
  };
}

interface Round {
  answered: number;
  /** ms from sending the change to each waiter's complete answer. */
  fromSend: number[];
  /** ms from sending the change to its ack, as this client saw it. */
  ackMs: number;
}

/** Parks `n` waiters on `side`, then runs `between` (which must return once the change is acked). */
async function park(side: Side, pool: Pool, ctl: Pool, n: number) {
  const index = await side.currentIndex(ctl);
  const arrivals: number[] = [];
  const failures: string[] = [];
  const waiters = Array.from({ length: n }, async () => {
    try {
      const res = await pool.request({ method: 'GET', path: `${side.path}?index=${index}&wait=60s` });
      await res.body.arrayBuffer();
      const at = performance.now();
      if (res.statusCode !== 200 || Number(res.headers['x-consul-index']) <= index) {
        failures.push(`HTTP ${res.statusCode} index ${res.headers['x-consul-index']}`);
      } else arrivals.push(at);
    } catch (err) {
      failures.push(String(err));
    }
  });
  const deadline = performance.now() + 60_000;
  while ((await side.parked(ctl)) < n) {
    if (performance.now() > deadline) throw new Error(`${side.name}: ${n} waiters not parked within 60 s`);
    await sleep(50);
  }
  await sleep(200); // let the last parked requests settle, so the change meets an idle loop
  return { arrivals, failures, done: Promise.all(waiters) };
}

async function fanout(side: Side, pool: Pool, ctl: Pool, n: number, round: number): Promise<Round> {
  const w = await park(side, pool, ctl, n);
  const sent = performance.now();
  await side.change(ctl, round, 'web');
  const ackMs = performance.now() - sent;
  await w.done;
  if (w.failures.length)
    throw new Error(`${side.name}: ${w.failures.length} waiters failed: ${w.failures[0]}`);
  return { answered: w.arrivals.length, fromSend: w.arrivals.map((t) => t - sent), ackMs };
}

/** Changes `api` while n waiters sit on `web`; returns how many of them answered within `graceMs`. */
async function isolation(side: Side, pool: Pool, ctl: Pool, n: number, graceMs: number) {
  const w = await park(side, pool, ctl, n);
  await side.change(ctl, 1000, 'api');
  await sleep(graceMs);
  const woken = w.arrivals.length;
  await side.change(ctl, 1001, 'web'); // release them
  await w.done;
  return woken;
}

function fdLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return 1024;
  }
}

function serveLongpoll(bytes: number): void {
  // the B5 reference server: parked responses answered with one pre-serialized body on /bump
  let index = 10;
  const body = Buffer.alloc(bytes, 0x20);
  body.write('[{"Node":{}}]');
  const waiters = new Set<ServerResponse>();
  const send = (res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': body.length,
      'x-consul-index': String(index),
    });
    res.end(body);
  };
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/bump') {
      index++;
      const ws = [...waiters];
      waiters.clear();
      for (const w of ws) send(w);
      res.end('{}');
    } else if (u.pathname === '/stats') res.end(JSON.stringify({ parked: waiters.size }));
    else if (Number(u.searchParams.get('index') ?? 0) < index) send(res);
    else {
      waiters.add(res);
      res.on('close', () => waiters.delete(res));
    }
  });
  server.keepAliveTimeout = 120_000;
  server.requestTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`longpoll on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/** Runs the benchmark; returns its markdown section. */
export async function run(): Promise<string> {
  const limit = fdLimit();
  const notes: string[] = [];
  // each side holds N sockets in this process and N in the server (same limit, inherited)
  const ns = [1000, 5000].map((n) => {
    const max = limit - 200;
    if (n > max)
      notes.push(`N=${n} lowered to ${max}: \`ulimit -n\` is ${limit} (raise it to run the full size).`);
    return Math.min(n, max);
  });
  const agent = await startAgent('dev');
  let reference: Awaited<ReturnType<typeof spawnPinned>> | undefined;
  const ctlAgent = new Pool(agent.url, { connections: 2 });
  const rows: string[][] = [];
  let isolationRow: string[] = [];
  try {
    for (const [name, port] of [
      ['web', 8080],
      ['api', 8081],
    ] as const) {
      const res = await ctlAgent.request({
        method: 'PUT',
        path: '/v1/agent/service/register',
        body: JSON.stringify({ ID: `${name}-0`, Name: name, Port: port, Tags: ['v1'], Meta: { zone: 'a' } }),
      });
      await res.body.dump();
    }
    const bodyBytes = Buffer.byteLength((await getText(ctlAgent, '/v1/health/service/web')).text);
    reference = await spawnPinned(
      SERVER_CPU,
      [import.meta.filename, '--serve-longpoll', String(bodyBytes)],
      /longpoll on (\S+)/,
    );
    const ctlRef = new Pool(reference.match, { connections: 2 });
    const sides: [Side, Pool][] = [
      [agentSide(agent.url), ctlAgent],
      [referenceSide(reference.match), ctlRef],
    ];
    try {
      for (const n of ns) {
        for (const [side, ctl] of sides) {
          const pool = new Pool(side.url, { connections: n, headersTimeout: 120_000, bodyTimeout: 120_000 });
          try {
            const rounds: Round[] = [];
            for (let r = 0; r < ROUNDS; r++)
              rounds.push(await fanout(side, pool, ctl, n, rows.length * 10 + r));
            const last = rounds.map((x) => Math.max(...x.fromSend));
            const p50 = rounds.map((x) => quantile(x.fromSend, 0.5));
            const p99 = rounds.map((x) => quantile(x.fromSend, 0.99));
            const first = rounds.map((x) => Math.min(...x.fromSend));
            const ack = rounds.map((x) => x.ackMs);
            const target = TARGETS_MS[n === ns[0] ? 1000 : 5000] as number;
            const isAgent = side === sides[0]?.[0];
            rows.push([
              fmt(n),
              side.name,
              `${rounds.map((x) => x.answered).join(' / ')}`,
              fmt(median(ack), 1),
              fmt(median(first), 1),
              fmt(median(p50), 1),
              fmt(median(p99), 1),
              `**${fmt(median(last), 1)}**`,
              last.map((x) => fmt(x, 0)).join(' / '),
              isAgent
                ? `≤ ${fmt(target)} ms: ${verdict(median(last) <= target, `by ${fmt(median(last) - target)} ms`)}`
                : '',
            ]);
            if (isAgent && n === ns[0]) {
              const woken = await isolation(side, pool, ctl, n, QUICK ? 500 : 1000);
              isolationRow = [
                fmt(n),
                String(woken),
                woken === 0 ? '**met** (0 woken)' : `**missed** (${woken} woken)`,
              ];
            }
          } finally {
            await pool.close();
          }
        }
      }
    } finally {
      await ctlRef.close();
    }
  } finally {
    await ctlAgent.close();
    await reference?.stop();
    await agent.stop();
  }
  return [
    '### Blocking queries: N parked on one service, one change',
    '',
    `Command: \`npx node bench/blocking.ts\` — N waiters \`GET /v1/health/service/web?index=<current>&wait=60s\` from one undici \`Pool\` with N connections (loadgen CPU); once the agent's \`phare_blocking_queries\` gauge shows all N parked, one \`PUT /v1/agent/service/register\` of a new \`web\` instance. Times are from *sending* that PUT to each waiter's complete response, as seen by the client (client parse time included, so large N is partly client-bound). Measuring from the PUT's ack is not meaningful here: both servers write the waiters' answers before the ack, and this one client loop reads them in arrival order, so the ack is seen last ("change ack ms"). ${ROUNDS} round(s); median over rounds. Reference: a bare node:http long-poll server on CPU ${SERVER_CPU} answering all parked requests with a pre-serialized body of the same size .`,
    '',
    table(
      [
        'N',
        'server',
        'answered',
        'change ack ms',
        'first ms',
        'p50 ms',
        'p99 ms',
        'all answered ms',
        'rounds (all, ms)',
        'target',
      ],
      rows,
    ),
    '',
    'Isolation: N waiters on `web`, then a change to service `api`; waiters on `web` answered within 1 s:',
    '',
    table(['N', 'web waiters woken by api change', 'target 0'], [isolationRow]),
    ...(notes.length ? ['', ...notes] : []),
  ].join('\n');
}

if (isMain(import.meta)) {
  if (process.argv[2] === '--serve-longpoll') {
    exitWithParent();
    serveLongpoll(Number(process.argv[3]));
  } else {
    await benchMain(run);
  }
}
