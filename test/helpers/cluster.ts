/**
 * A Phare cluster for tests: agents over a real etcd cluster (test/helpers/etcd.ts), in-process or as child
 * processes (for kill -9), with short lease TTLs so failures show within seconds.
 */
import dgram from 'node:dgram';
import { after } from 'node:test';
import { decode, encode } from 'dns-packet';
import { pino } from 'pino';
import { type RawAgentConfig, resolveAgentConfig } from '../../src/agent/config/index.ts';
import { type RunningAgent, startAgent } from '../../src/agent/index.ts';
import type { Store } from '../../src/agent/store/index.ts';
import { type AgentProcess, spawnAgent, tempDir } from './agent.ts';
import type { EtcdCluster } from './etcd.ts';

/** Lease TTL the cluster tests use (etcd's floor with the helper's raft timers is 1 s). */
export const TEST_NODE_TTL = '2s';

/** Flags of a cluster agent named `node` under `prefix`. */
export function clusterFlags(
  etcd: EtcdCluster,
  prefix: string,
  node: string,
  dataDir: string,
): RawAgentConfig {
  return {
    'http-addr': '127.0.0.1:0',
    'dns-addr': '127.0.0.1:0',
    node,
    'log-level': 'silent',
    store: 'etcd',
    'etcd-endpoints': etcd.endpoints.join(','),
    'etcd-prefix': prefix,
    'node-ttl': TEST_NODE_TTL,
    'data-dir': dataDir,
  };
}

/** An in-process cluster agent (on `options.store` if given: a test's wrapped etcd store). `close()` also removes its data dir. */
export async function startClusterAgent(
  etcd: EtcdCluster,
  prefix: string,
  node: string,
  extra: RawAgentConfig = {},
  options: { store?: Store } = {},
): Promise<RunningAgent & { url: string }> {
  const dir = tempDir(`phare-${node}-`);
  const config = resolveAgentConfig({
    flags: { ...clusterFlags(etcd, prefix, node, dir.path), ...extra },
    env: {},
  });
  const agent = await startAgent({
    config,
    logger: pino({ level: 'silent' }),
    ...(options.store ? { store: options.store } : {}),
    cluster: { aeIntervalMs: 2000, reapIntervalMs: 250, probeIntervalMs: 200 },
  });
  const close = agent.close.bind(agent);
  return Object.assign(agent, {
    url: agent.httpUrl,
    close: async () => {
      // A close that hangs would hold the whole test file until its timeout: fail it loudly instead.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        close(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`agent ${node}: close() did not finish within 15 s`)),
            15_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      dir.remove();
    },
  });
}

/** A cluster agent as a child process (`phare agent --store etcd …`), restartable on the same data dir. */
export async function spawnClusterAgent(
  etcd: EtcdCluster,
  prefix: string,
  node: string,
  dataDir: string,
): Promise<AgentProcess> {
  const f = clusterFlags(etcd, prefix, node, dataDir);
  const args: string[] = [];
  for (const [k, v] of Object.entries(f)) if (k !== 'log-level') args.push(`--${k}`, String(v));
  return spawnAgent(args, { PHARE_LOG_LEVEL: 'warn' });
}

/** Answers of an A query for `name` from a DNS server on 127.0.0.1:`port` (UDP). */
export function dnsA(port: number, name: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`DNS: no answer for ${name} within 2 s`));
    }, 2000);
    sock.once('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      const res = decode(msg);
      resolve((res.answers ?? []).flatMap((a) => (a.type === 'A' ? [String(a.data)] : [])));
    });
    sock.send(
      encode({ type: 'query', id: 1, flags: 256, questions: [{ type: 'A', name }] }),
      port,
      '127.0.0.1',
    );
  });
}

/** GET as JSON with the Consul headers. */
export async function getJson(
  url: string,
): Promise<{ status: number; body: unknown; index: number; knownLeader: string | null; text: string }> {
  const r = await fetch(url);
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return {
    status: r.status,
    body,
    text,
    index: Number(r.headers.get('x-consul-index') ?? 0),
    knownLeader: r.headers.get('x-consul-knownleader'),
  };
}

/** PUT a JSON body; resolves with status and text. */
export async function put(url: string, body?: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { method: 'PUT', body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

/** What {@link clusterAgents} hands a test file. */
export interface ClusterAgents {
  /** Starts agents a, b and c (in-process) under a fresh key prefix, so tests sharing one etcd never meet. */
  three(): Promise<{
    prefix: string;
    a: RunningAgent;
    b: RunningAgent;
    c: RunningAgent;
    all: [RunningAgent, RunningAgent, RunningAgent];
  }>;
  /** Closes `agent` with the others when the file ends; returns it. */
  track<T extends { close(): Promise<void> }>(agent: T): T;
  /** A key prefix no other test of the file uses (`/<stem><n>`), for agents a test starts itself. */
  prefix(): string;
}

/**
 * The agents of one test file over `etcd`: every agent started by {@link ClusterAgents.three} or handed to
 * {@link ClusterAgents.track} is closed when the file ends, then the etcd cluster; the first close failure
 * fails the file.
 *
 * @example
 * const etcd = await startEtcdCluster({ size: 3 });
 * const { three, track } = clusterAgents(etcd, 'kv', { 'dns-addr': '' });
 * const { a, b, c } = await three(); // prefixes /kv1, /kv2, …
 */
export function clusterAgents(etcd: EtcdCluster, stem: string, flags: RawAgentConfig = {}): ClusterAgents {
  const agents: { close(): Promise<void> }[] = [];
  after(async () => {
    const failures: unknown[] = [];
    for (const a of agents.splice(0)) await a.close().catch((err) => failures.push(err));
    await etcd.close();
    if (failures.length > 0) throw failures[0];
  });
  const track = <T extends { close(): Promise<void> }>(agent: T): T => {
    agents.push(agent);
    return agent;
  };
  let n = 0;
  const prefix = () => `/${stem}${++n}`;
  return {
    track,
    prefix,
    async three() {
      const p = prefix();
      const all: RunningAgent[] = [];
      for (const name of ['a', 'b', 'c']) all.push(track(await startClusterAgent(etcd, p, name, flags)));
      const [a, b, c] = all as [RunningAgent, RunningAgent, RunningAgent];
      return { prefix: p, a, b, c, all: [a, b, c] };
    },
  };
}
