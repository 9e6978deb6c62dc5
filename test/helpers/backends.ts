/**
 * Real misbehaving HTTP backends for SDK tests (no HTTP mocking): normal, slow, failing with a status and
 * `Retry-After`, resetting connections, and child-process backends that can be killed with SIGKILL. Plus a
 * tiny DNS server (dns-packet over node:dgram) serving fixed A/SRV records on 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';

/** How a backend answers. */
export type Behavior =
  | { kind: 'ok'; delayMs?: number }
  | { kind: 'status'; status: number; retryAfter?: string; delayMs?: number }
  | { kind: 'reset' }
  | { kind: 'hang' };

/** A running in-process backend. */
export interface Backend {
  name: string;
  url: string;
  port: number;
  /** Requests received (all of them, including failed ones). */
  hits: number;
  /** `x-phare-deadline-ms` values seen. */
  deadlines: number[];
  behavior: Behavior;
  close(): Promise<void>;
}

/**
 * Starts a backend on 127.0.0.1 port 0 answering `{ name, port }` as JSON (or misbehaving per `behavior`,
 * which tests may change at any time).
 */
export async function startBackend(name: string, behavior: Behavior = { kind: 'ok' }): Promise<Backend> {
  const b: Backend = {
    name,
    url: '',
    port: 0,
    hits: 0,
    deadlines: [],
    behavior,
    close: async () => {},
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    b.hits++;
    const d = req.headers['x-phare-deadline-ms'];
    if (typeof d === 'string') b.deadlines.push(Number(d));
    const now = b.behavior;
    req.resume();
    if (now.kind === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (now.kind === 'hang') return;
    const answer = () => {
      if (res.destroyed) return;
      if (now.kind === 'status') {
        if (now.retryAfter !== undefined) res.setHeader('retry-after', now.retryAfter);
        res.statusCode = now.status;
        res.end(JSON.stringify({ name, error: now.status }));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, port: b.port }));
    };
    const delay = now.delayMs ?? 0;
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.port = (server.address() as AddressInfo).port;
  b.url = `http://127.0.0.1:${b.port}`;
  b.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return b;
}

const CHILD_SOURCE = `
const http = require('node:http');
const name = process.argv[1];
const server = http.createServer((req, res) => {
  req.resume();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ name, port: server.address().port }));
});
server.keepAliveTimeout = 10000;
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => process.stdout.write('PORT ' + server.address().port + '\\n'));
`;

/** A backend in its own process (for kill -9). */
export interface ChildBackend {
  name: string;
  url: string;
  port: number;
  child: ChildProcess;
  /** Sends SIGKILL and waits for the exit. */
  kill(): Promise<void>;
}

/** Spawns a child-process backend on 127.0.0.1 (port 0 unless given) and waits until it listens. */
export async function spawnBackend(name: string, port = 0): Promise<ChildBackend> {
  const child = spawn(process.execPath, ['-e', CHILD_SOURCE, name, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const actual = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`backend ${name} did not start`)), 15_000);
    child.stdout?.on('data', (d) => {
      out += String(d);
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`backend ${name} exited with ${code}`));
    });
  });
  return {
    name,
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A record set served by {@link startDnsServer}: A (and AAAA) addresses and SRV targets per name. */
export interface DnsRecords {
  a?: Record<string, string[]>;
  srv?: Record<string, { target: string; port: number; weight?: number; priority?: number }[]>;
}

/** A tiny authoritative DNS server on 127.0.0.1 (UDP). */
export interface TestDnsServer {
  /** `127.0.0.1:port`, for `dnsResolver({ servers: [..] })`. */
  address: string;
  port: number;
  records: DnsRecords;
  /** Queries answered. */
  queries: number;
  /** Drop every query (the server looks down) while true. */
  silent: boolean;
  ttl: number;
  close(): Promise<void>;
}

/** Starts a DNS server answering from `records` (NXDOMAIN for unknown names). */
export async function startDnsServer(records: DnsRecords, ttl = 1): Promise<TestDnsServer> {
  const socket = createSocket('udp4');
  const s: TestDnsServer = {
    address: '',
    port: 0,
    records,
    queries: 0,
    silent: false,
    ttl,
    close: async () => {},
  };
  socket.on('message', (msg, rinfo) => {
    if (s.silent) return;
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    s.queries++;
    const question = q.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase();
    const answers: dnsPacket.Answer[] = [];
    let known = false;
    if (question.type === 'A') {
      const list = s.records.a?.[name];
      if (list) known = true;
      for (const ip of list ?? [])
        answers.push({ type: 'A', name: question.name, ttl: s.ttl, class: 'IN', data: ip });
    } else if (question.type === 'SRV') {
      const list = s.records.srv?.[name];
      if (list) known = true;
      for (const r of list ?? []) {
        answers.push({
          type: 'SRV',
          name: question.name,
          ttl: s.ttl,
          class: 'IN',
          data: { target: r.target, port: r.port, weight: r.weight ?? 1, priority: r.priority ?? 1 },
        });
      }
    } else {
      known = Boolean(s.records.a?.[name] || s.records.srv?.[name]);
    }
    const reply = dnsPacket.encode({
      id: q.id,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3), // rcode 3 = NXDOMAIN
      questions: q.questions,
      answers,
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  s.port = socket.address().port;
  s.address = `127.0.0.1:${s.port}`;
  s.close = () => new Promise<void>((r) => socket.close(() => r()));
  return s;
}

/** Steady load through a service client, for failover tests: see {@link startCallLoad}. */
export interface CallLoad {
  /** Calls answered so far. */
  readonly ok: number;
  /** Every failed call's error. */
  readonly errors: unknown[];
  /** The instance ports that answered. */
  readonly seenPorts: Set<number>;
  /** Stops the callers and waits for their last call. Idempotent. */
  stop(): Promise<void>;
}

/**
 * `callers` loops calling `GET /` on `service` through `http` back to back until stopped, counting answers,
 * failures and the instances that answered.
 *
 * @example
 * const load = startCallLoad(http, 'orders');
 * await waitFor(() => load.ok > 300);
 * await load.stop();
 * assert.equal(load.errors.length, 0);
 */
export function startCallLoad(
  http: {
    get(
      service: string,
      path: string,
    ): Promise<{ body: { dump(): Promise<void> }; instance: { port: number } }>;
  },
  service: string,
  callers = 8,
): CallLoad {
  let running = true;
  let ok = 0;
  const errors: unknown[] = [];
  const seenPorts = new Set<number>();
  const loops = Array.from({ length: callers }, async () => {
    while (running) {
      try {
        const res = await http.get(service, '/');
        await res.body.dump();
        seenPorts.add(res.instance.port);
        ok++;
      } catch (err) {
        errors.push(err);
      }
    }
  });
  return {
    get ok() {
      return ok;
    },
    errors,
    seenPorts,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
