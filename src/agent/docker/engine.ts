/**
 * The few Docker Engine API calls the watcher needs, over the engine's unix socket with undici (already
 * a dependency, the SDK's HTTP client: no second HTTP stack, and dockerode would bring ssh2, tar-fs and gRPC for three
 * GET requests). API reference: https://docs.docker.com/engine/api/v1.41/ (Docker 20.10 speaks 1.41; the
 * calls below are unchanged since 1.25, so the path is left unversioned and the engine answers with its own).
 */
import { createRequire } from 'node:module';
import type { Agent as UndiciAgent } from 'undici';

/** One container as `GET /containers/{id}/json` describes it (the fields the watcher reads). */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Config: {
    Hostname?: string;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
    Healthcheck?: { Test?: string[] } | null;
  };
  State: {
    Status: string;
    Running: boolean;
    Health?: { Status: string; Log?: { Output?: string; ExitCode?: number }[] | null } | null;
  };
  NetworkSettings: {
    Networks?: Record<string, { IPAddress?: string; Aliases?: string[] | null }> | null;
  };
}

/** One engine event (`GET /events`), container events only. */
export interface EngineEvent {
  Type?: string;
  Action?: string;
  id?: string;
  Actor?: { ID?: string };
  time?: number;
}

/** A Docker engine reached over its unix socket. */
export interface DockerEngine {
  /** IDs of the running containers. */
  running(signal?: AbortSignal): Promise<string[]>;
  /** The container, or undefined when the engine no longer knows it (404). */
  inspect(id: string, signal?: AbortSignal): Promise<ContainerInspect | undefined>;
  /**
   * Streams container events until the connection ends or `signal` aborts. `onOpen` runs once the engine
   * has answered the subscription, before any event: a full list taken then misses nothing.
   */
  events(onEvent: (e: EngineEvent) => void, onOpen: () => void, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * The socket path of a `unix://` endpoint (the `DOCKER_HOST` spelling), or an error naming `field`.
 *
 * @example
 * socketPathOf('unix:///var/run/docker.sock', 'docker'); // '/var/run/docker.sock'
 */
export function socketPathOf(endpoint: string, field: string): string {
  const m = /^unix:\/\/(\/.+)$/.exec(endpoint);
  if (!m?.[1]) {
    throw new Error(
      `${field}: expected a unix socket endpoint such as unix:///var/run/docker.sock, got ${JSON.stringify(endpoint)}`,
    );
  }
  return m[1];
}

/**
 * Opens a client to the engine at `socketPath`. Nothing connects until the first call.
 *
 * @example
 * const engine = createDockerEngine('/var/run/docker.sock');
 * console.log(await engine.running());
 */
export function createDockerEngine(socketPath: string): DockerEngine {
  // headersTimeout/bodyTimeout 0: the events stream stays open for as long as the engine runs
  // required here, not imported statically: only `--docker` needs undici (~110 modules, ~15 MiB of RSS
  // an agent without it would carry; BENCHMARKS.md, "Agent memory with 10,000 HTTP checks")
  const { Agent } = createRequire(import.meta.url)('undici') as typeof import('undici');
  const agent: UndiciAgent = new Agent({ connect: { socketPath }, headersTimeout: 30_000, bodyTimeout: 0 });
  const origin = 'http://docker';

  async function getJson<T>(path: string, signal?: AbortSignal): Promise<{ status: number; body: T }> {
    const res = await agent.request({ origin, path, method: 'GET', signal, bodyTimeout: 30_000 });
    const text = await res.body.text();
    if (res.statusCode === 404) return { status: 404, body: undefined as T };
    if (res.statusCode >= 300) throw new Error(`docker GET ${path}: ${res.statusCode} ${text.trim()}`);
    return { status: res.statusCode, body: JSON.parse(text) as T };
  }

  return {
    async running(signal) {
      const { body } = await getJson<{ Id: string }[]>('/containers/json', signal);
      return body.map((c) => c.Id);
    },
    async inspect(id, signal) {
      const { status, body } = await getJson<ContainerInspect>(
        `/containers/${encodeURIComponent(id)}/json`,
        signal,
      );
      return status === 404 ? undefined : body;
    },
    async events(onEvent, onOpen, signal) {
      const filters = encodeURIComponent(JSON.stringify({ type: ['container'] }));
      const res = await agent.request({ origin, path: `/events?filters=${filters}`, method: 'GET', signal });
      if (res.statusCode >= 300) {
        const text = await res.body.text();
        throw new Error(`docker GET /events: ${res.statusCode} ${text.trim()}`);
      }
      onOpen();
      let buf = '';
      res.body.setEncoding('utf8');
      for await (const chunk of res.body as AsyncIterable<string>) {
        buf += chunk;
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) onEvent(JSON.parse(line) as EngineEvent);
          nl = buf.indexOf('\n');
        }
      }
    },
    close: () => agent.close(),
  };
}
