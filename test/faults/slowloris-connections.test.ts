/**
 * Issue 11 §6: slow clients must not hold the agent. A real agent process with a 256-descriptor limit
 * (its connection cap derives from it) is attacked with 300 raw slowloris sockets that trickle header
 * bytes; meanwhile `/v1/status/leader` on fresh connections must keep answering fast, a write must
 * succeed, a blocking read must hold past the header timeout, and the trickling sockets must be closed
 * by the server (evicted at the cap, or 408 after the header timeout).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { type AgentProcess, spawnAgent } from '../helpers/agent.ts';

const ATTACKERS = 300;
const FD_LIMIT = 256;

let agent: AgentProcess;
const sockets: net.Socket[] = [];
let trickle: NodeJS.Timeout | undefined;

before(async () => {
  agent = await spawnAgent(
    ['--dev', '--http-addr', '127.0.0.1:0', '--dns-addr', ''],
    {},
    {
      prefix: ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`, '--'],
    },
  );
});

after(async () => {
  if (trickle) clearInterval(trickle);
  for (const s of sockets) s.destroy();
  agent.child.kill('SIGKILL');
  await agent.exited;
});

interface Attacker {
  socket: net.Socket;
  closed: Promise<{ afterMs: number; got: string }>;
}

/** A raw socket that sends a request line and then never finishes its headers. */
function slowloris(port: number): Attacker {
  const t0 = Date.now();
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let got = '';
  socket.on('data', (d) => {
    got += String(d);
  });
  socket.on('error', () => {});
  socket.on('connect', () => socket.write('GET /v1/catalog/services HTTP/1.1\r\nHost: x\r\n'));
  const closed = new Promise<{ afterMs: number; got: string }>((resolve) =>
    socket.once('close', () => resolve({ afterMs: Date.now() - t0, got })),
  );
  return { socket, closed };
}

/** One `/v1/status/leader` on a fresh connection; its latency in ms. */
async function leader(url: string): Promise<number> {
  const dispatcher = new Agent({ pipelining: 0 });
  const t0 = performance.now();
  try {
    const res = await request(`${url}/v1/status/leader`, {
      dispatcher,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const body = await res.body.text();
    assert.equal(res.statusCode, 200, body);
    return performance.now() - t0;
  } finally {
    await dispatcher.close();
  }
}

test('300 slowloris sockets under a 256-descriptor limit: the agent keeps answering and sheds them', async () => {
  const attackers: Attacker[] = [];
  for (let i = 0; i < ATTACKERS; i++) attackers.push(slowloris(agent.port));
  // keep every attacker alive: one more header byte a second (a slowloris resets idle timers this way)
  trickle = setInterval(() => {
    for (const a of attackers) if (!a.socket.destroyed) a.socket.write('X');
  }, 1000);
  await new Promise((r) => setTimeout(r, 500));

  // a blocking read made under attack must be held for its whole wait, past the header timeout
  const blockingStart = Date.now();
  const blocking = request(`${agent.url}/v1/catalog/services?index=999999&wait=12s`, {
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  }).then(async (r) => ({
    status: r.statusCode,
    body: await r.body.text(),
    afterMs: Date.now() - blockingStart,
  }));

  const latencies: number[] = [];
  for (let i = 0; i < 20; i++) {
    latencies.push(await leader(agent.url));
    await new Promise((r) => setTimeout(r, 50));
  }
  latencies.sort((a, b) => a - b);
  const p50 = latencies[Math.floor(latencies.length / 2)] as number;
  assert.ok(
    p50 < 100,
    `status/leader p50 ${p50.toFixed(1)} ms under attack (all: ${latencies.map((l) => l.toFixed(0))})`,
  );
  assert.ok((latencies.at(-1) as number) < 2000, `status/leader max ${latencies.at(-1)} ms`);

  // writes work too (the store and the socket budget are not starved of descriptors)
  const reg = await request(`${agent.url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'under-attack', Port: 1 }),
    dispatcher: new Agent({ pipelining: 0 }),
  });
  assert.equal(reg.statusCode, 200, await reg.body.text());

  // the cap (half of 256 − 64 = 96) has shed most attackers already, by eviction
  const shed = attackers.filter((a) => a.socket.destroyed || a.socket.readyState !== 'open').length;
  assert.ok(shed >= ATTACKERS - 100, `only ${shed} of ${ATTACKERS} slowloris sockets were closed at the cap`);

  // the rest get 408 from the 10 s header timeout (checked every second): none lives past ~12 s
  const results = await Promise.all(attackers.map((a) => a.closed));
  const slowest = Math.max(...results.map((r) => r.afterMs));
  assert.ok(slowest < 14_000, `a slowloris socket lived ${slowest} ms`);
  assert.ok(
    results.some((r) => r.got.startsWith('HTTP/1.1 408')),
    'no attacker was answered 408 by the header timeout',
  );

  const b = await blocking;
  assert.equal(b.status, 200, b.body);
  assert.ok(b.afterMs >= 11_000, `blocking read returned after ${b.afterMs} ms, before its 12 s wait`);
});
