/**
 * The agent's logger and its lifecycle lines. On a terminal: pino-pretty's human lines (`14:02:07.481 INFO
 * catalog: service registered: web (web-1) at 127.0.0.1:8080`); elsewhere, or with `--log-json`: one JSON
 * object per line, for log shippers. Either way each line carries each key once: the root logger has no
 * `component`, each child adds its own (pino writes bindings as given, so a repeated key would appear twice).
 */
import { createRequire } from 'node:module';
import { type DestinationStream, type Logger, pino } from 'pino';
import type { Catalog, LifecycleEvent } from './catalog/index.ts';
import type { AgentConfig } from './config/index.ts';

/**
 * What the agent's logs never show (pino redaction): ACL secrets wherever a log line could carry them — a
 * request's token headers, the configured management and DNS tokens, a token's SecretID. The agent logs
 * accessor IDs, never secrets; this is the net under that rule.
 */
export const LOG_REDACT = {
  paths: [
    'req.headers["x-consul-token"]',
    'req.headers.authorization',
    'headers["x-consul-token"]',
    'headers.authorization',
    'config.aclInitialManagementToken',
    'config.aclDnsToken',
    'aclInitialManagementToken',
    'aclDnsToken',
    'token',
    'secretId',
    'SecretID',
  ],
  censor: '[redacted]',
};

/** Options of {@link createAgentLogger}. */
export interface AgentLoggerOptions {
  /** Whether stderr is a terminal. @default process.stderr.isTTY */
  isTTY?: boolean;
}

/**
 * The default agent logger: pretty on a terminal unless `--log-json`, JSON otherwise; on stderr.
 *
 * @example
 * const logger = createAgentLogger(config);
 */
export function createAgentLogger(
  config: Pick<AgentConfig, 'logLevel' | 'logJson'>,
  options: AgentLoggerOptions = {},
): Logger {
  const tty = options.isTTY ?? process.stderr.isTTY === true;
  if (config.logJson || !tty)
    return pino({ level: config.logLevel, redact: LOG_REDACT }, pino.destination(2));
  // In-process and synchronous (no worker thread): lines are out before the process exits. Required only
  // here: an agent logging JSON (a service, a container) does not carry pino-pretty and its colour stack.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  const stream: DestinationStream = pretty({
    destination: 2,
    sync: true,
    colorize: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}{component}: {end}{msg}',
    singleLine: true,
  });
  return pino({ level: config.logLevel, redact: LOG_REDACT }, stream);
}

const MAX_OUTPUT = 200;

/** A check's output on one line, cut: the whole text is in the API. */
function oneLine(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > MAX_OUTPUT ? `${t.slice(0, MAX_OUTPUT)}…` : t;
}

/**
 * Logs the catalog's lifecycle events at info: services registered and deregistered and why, check status
 * changes (from → to, with output), agents joining or failing. Returns the unsubscribe function.
 *
 * @example
 * const stop = logLifecycle(catalog, logger.child({ component: 'catalog' }));
 */
export function logLifecycle(catalog: Catalog, log: Logger): () => void {
  return catalog.onLifecycle((e: LifecycleEvent) => {
    // Every write emits these: build no message at all when info is off (`--log-level warn` under load).
    if (!log.isLevelEnabled('info')) return;
    switch (e.type) {
      case 'service-registered':
      case 'service-deregistered': {
        const s = e.service;
        const address = s.address || catalog.node(s.node)?.address || '';
        const registered = e.type === 'service-registered';
        log.info(
          {
            event: e.type,
            service: s.name,
            serviceId: s.id,
            address,
            port: s.port,
            ...(registered ? { tags: s.tags } : {}),
            ...(e.why ? { why: e.why } : {}),
          },
          `service ${registered ? (e.replaced ? 're-registered' : 'registered') : 'deregistered'}: ${s.name} (${s.id}) at ${address}:${s.port}${e.why ? ` — ${e.why}` : ''}`,
        );
        break;
      }
      case 'check-status': {
        const c = e.check;
        const output = oneLine(c.output);
        log.info(
          {
            event: e.type,
            checkId: c.checkId,
            ...(c.serviceId ? { serviceId: c.serviceId, service: c.serviceName } : {}),
            node: c.node,
            from: e.from,
            to: c.status,
            output,
          },
          `check ${c.checkId}${c.serviceId ? ` (${c.serviceId})` : ` (node ${c.node})`} ${e.from} → ${c.status}${output ? `: ${output}` : ''}`,
        );
        break;
      }
      case 'agent-liveness':
        log.info(
          {
            event: e.alive ? 'agent-alive' : 'agent-failed',
            member: e.node,
            address: e.address,
            ...(e.alive ? {} : { why: 'its lease expired: no heartbeat within --node-ttl' }),
          },
          e.alive
            ? `agent ${e.node} (${e.address}) joined: ${e.output}`
            : `agent ${e.node} (${e.address}) failed: ${e.output} — its lease expired (no heartbeat within --node-ttl: crashed, stopped without leaving, or cut off)`,
        );
        break;
    }
  });
}
