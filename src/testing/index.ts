/**
 * `phare/testing`: a real Phare agent inside your test process, on a free loopback port, with an in-memory
 * store — so service tests exercise registration and discovery against the real thing, not a mock.
 */
// Checks the Node.js version before anything else loads (see node-check.ts).
import '../node-check.ts';
import type { RawAgentConfig } from '../agent/index.ts';

/** Options of {@link startTestAgent}. */
export interface TestAgentOptions {
  /** Serve DNS too (on a free port). @default false */
  dns?: boolean;
  /** Node name. @default "test-node" */
  node?: string;
  /** Any other agent flag, by name (`{ datacenter: 'dc2' }`). */
  flags?: RawAgentConfig;
}

/** A running test agent. */
export interface TestAgent extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`: give it to the SDK (`createConsulClient({ address: agent.url })`). */
  readonly url: string;
  /** `127.0.0.1:<port>`, the value of `PHARE_HTTP_ADDR` for child processes. */
  readonly address: string;
  /** DNS `host:port` when `dns: true`, else null. */
  readonly dns: string | null;
  /** Environment for services under test: `{ PHARE_HTTP_ADDR }`. */
  readonly env: { PHARE_HTTP_ADDR: string };
  /** Stops the agent. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an in-process agent in dev mode (memory store, short check intervals, logs off) on 127.0.0.1:0.
 *
 * @example
 * import { startTestAgent } from 'phare/testing';
 * await using agent = await startTestAgent();
 * const registration = await registerService({ name: 'users', port, consul: { address: agent.url } });
 */
export async function startTestAgent(options: TestAgentOptions = {}): Promise<TestAgent> {
  const [{ resolveAgentConfig, startAgent }, { pino }] = await Promise.all([
    import('../agent/index.ts'),
    import('pino'),
  ]);
  const config = resolveAgentConfig({
    flags: {
      dev: true,
      'http-addr': '127.0.0.1:0',
      'dns-addr': options.dns ? '127.0.0.1:0' : '',
      node: options.node ?? 'test-node',
      'log-level': 'silent',
      ...options.flags,
    },
    env: {},
  });
  const agent = await startAgent({ config, logger: pino({ level: 'silent' }) });
  const address = `${agent.httpAddress.host}:${agent.httpAddress.port}`;
  return {
    url: agent.httpUrl,
    address,
    dns: agent.dnsAddress ? `${agent.dnsAddress.host}:${agent.dnsAddress.port}` : null,
    env: { PHARE_HTTP_ADDR: address },
    close: () => agent.close(),
    [Symbol.asyncDispose]: () => agent.close(),
  };
}
