/**
 * Config sections every example service shares. Each service's `config.ts` composes them with its own
 * sections into one strict zod schema, which `loadConfig` validates the YAML layers and environment against.
 */
import { z } from 'zod';

const port = z.number().int().min(1).max(65535);

/** Where the service listens, and the address it registers (what callers and the agent's check use). */
export const serverSection = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port,
  advertise: z.string().min(1).default('127.0.0.1'),
});

/** The Phare agent (or a Consul agent) this service registers with and discovers through. */
export const registrySection = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port,
  /** How often the agent probes `/health/ready`. */
  checkIntervalMs: z.number().int().min(100).default(5000),
});

/** The graceful-shutdown budget (see docs/health.md, "Graceful shutdown"). */
export const shutdownSection = z.strictObject({
  /** Between deregistration and closing the listener: callers' discovery caches catch up meanwhile. */
  drainDelayMs: z.number().int().min(0).default(3000),
  timeoutMs: z.number().int().min(1000).default(20000),
});

export const logSection = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** A WebSocket URL (`ws://host:port/path`) or a service name the SDK resolves (`phare://bus/events`). */
export const wsUrl = () =>
  z.string().refine((v) => /^(wss?|phare):\/\/[^/]+/.test(v), {
    message: 'expected ws(s)://host:port/path or phare://<service>/path',
  });

/** The registry's HTTP address as the SDK expects it. */
export const registryAddress = (r: { host: string; port: number }): string => `http://${r.host}:${r.port}`;
