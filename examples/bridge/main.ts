/**
 * bridge — subscribes to `notes.created` on the bus and, for each note, counts its words and calls the api
 * by name: PUT phare://api/notes/:id/summary. The SDK's service client resolves `api` through the agent,
 * balances over the passing instances and retries another instance when one fails or goes away — kill an
 * api instance and watch `GET /stats` here: `lastProcessed.instance` moves, `failed` stays 0.
 *
 * After every (re)connection to the bus, and every 15 s, it also catches up (GET /notes?processed=false), so
 * events published while it was away, or notes whose call failed, are not lost, only late.
 *
 *   GET /stats   -> counters, the last note processed and which api instance answered
 */
import { createServer } from 'node:http';
import { createDiscovery, createServiceClient, type Registration, staticResolver } from 'phare';
import { parsePhareUrl } from 'phare/config';
import { createGracefulShutdown, createHealth, eventLoopDelayCheck } from 'phare/health';
import { type BusEvent, connectBus } from '../lib/bus-client.ts';
import { sendJson } from '../lib/http.ts';
import { createLogger } from '../lib/logger.ts';
import { registryAddress } from '../lib/schema.ts';
import { listenAndRegister } from '../lib/serve.ts';
import { loadBridgeConfig } from './config.ts';

const config = loadBridgeConfig();
const log = createLogger('bridge', config.log.level);
const instance = `bridge@${config.server.advertise}:${config.server.port}`;

const discovery = createDiscovery({ consul: { address: registryAddress(config.registry) }, logger: log });
// `phare://api` goes through the registry; a plain URL (say, an api outside Phare) gets a static resolver.
const apiRef = parsePhareUrl(config.api.url);
const apiName = apiRef?.service ?? 'api';
const apiPath = apiRef?.path.replace(/\/$/, '') ?? '';
const apiDiscovery = apiRef
  ? discovery
  : createDiscovery({ resolver: staticResolver({ services: { api: [config.api.url] } }), logger: log });
const api = createServiceClient({
  discovery: apiDiscovery,
  deadlineMs: config.api.deadlineMs,
  logger: log,
  hooks: {
    onRetry: ({ instance: i, attempt, reason }) =>
      log.info({ instance: i.id, attempt, reason }, 'api call failed on one instance; retrying another'),
  },
});

const stats = {
  received: 0,
  processed: 0,
  failed: 0,
  catchUps: 0,
  lastProcessed: undefined as { id: number; instance: string; attempts: number } | undefined,
  lastError: undefined as string | undefined,
};
const pending = new Map<number, string>(); // note id -> text
let working = false;

/** Works through pending notes one at a time (a bridge is a pipe, not a thundering herd). */
async function drainQueue(): Promise<void> {
  if (working) return;
  working = true;
  try {
    for (const [id, text] of pending) {
      pending.delete(id);
      try {
        const res = await api.put(apiName, `${apiPath}/notes/${id}/summary`, {
          json: { words: text.split(/\s+/).filter(Boolean).length, processedBy: instance },
        });
        const body = await res.text();
        if (res.statusCode === 200) {
          stats.processed++;
          stats.lastProcessed = { id, instance: res.instance.id, attempts: res.attempts };
          log.info({ note: id, api: res.instance.id, attempts: res.attempts }, 'note processed');
        } else {
          stats.failed++;
          stats.lastError = `note ${id}: api answered ${res.statusCode} ${body}`;
          log.warn({ note: id, status: res.statusCode, body }, 'api refused the summary');
        }
      } catch (err) {
        // No api instance at all, or the deadline ran out: the next catch-up picks the note up again.
        stats.failed++;
        stats.lastError = `note ${id}: ${(err as Error).message}`;
        log.warn(
          { note: id, err: (err as Error).message, code: (err as { code?: string }).code },
          'api call failed',
        );
      }
    }
  } finally {
    working = false;
  }
}

let catchUpTimer: NodeJS.Timeout | undefined;
async function catchUp(): Promise<void> {
  clearTimeout(catchUpTimer);
  try {
    const res = await api.get(apiName, `${apiPath}/notes`, { query: { processed: 'false' } });
    if (res.statusCode !== 200) throw new Error(`GET /notes answered ${res.statusCode}`);
    const notes = await res.json<{ id: number; text: string }[]>();
    stats.catchUps++;
    for (const n of notes) pending.set(n.id, n.text);
    if (notes.length) log.info({ notes: notes.length }, 'caught up with unprocessed notes');
    void drainQueue();
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'catch-up failed; trying again in 2 s');
    if (!graceful.shuttingDown) catchUpTimer = setTimeout(() => void catchUp(), 2000);
  }
}

const bus = connectBus({
  url: config.bus.url,
  discovery,
  topics: ['notes.created'],
  onConnect: () => void catchUp(),
  onEvent: (event: BusEvent) => {
    const note = event.data as { id?: unknown; text?: unknown };
    if (event.topic !== 'notes.created' || typeof note?.id !== 'number' || typeof note.text !== 'string')
      return;
    stats.received++;
    pending.set(note.id, note.text);
    void drainQueue();
  },
  logger: log,
});

// A note whose call failed (no api instance passing, say during a database outage) is picked up again by a
// periodic sweep, not only at the next bus reconnection.
const sweep = setInterval(() => {
  if (bus.connected && pending.size === 0 && !graceful.shuttingDown) void catchUp();
}, 15_000);
sweep.unref();

const health = createHealth({
  logger: log,
  checks: {
    // The bridge's one job needs the bus: without it, it is not ready (critical in the agent).
    bus: async () => {
      if (!bus.connected) throw new Error('not connected to the bus');
      return `subscribed at ${bus.endpoint}`;
    },
    eventLoop: eventLoopDelayCheck({ maxDelayMs: 1000 }),
    api: {
      probes: [], // /health only: an api outage delays notes, it does not make the bridge unhealthy
      critical: false,
      run: async () => `${(await apiDiscovery.instances(apiName)).length} passing api instance(s)`,
    },
  },
});

const server = createServer((req, res) => {
  if (health.handle(req, res)) return;
  if (req.method === 'GET' && req.url === '/stats') {
    return sendJson(res, 200, { ...stats, pending: pending.size, bus: bus.endpoint ?? null });
  }
  sendJson(res, 404, { error: 'not found; try GET /stats' });
});

let registration: Registration | undefined;
const graceful = createGracefulShutdown({
  server,
  health,
  logger: log,
  drainDelayMs: config.shutdown.drainDelayMs,
  timeoutMs: config.shutdown.timeoutMs,
  beforeShutdown: () => registration?.deregister(),
  onShutdown: [
    () => clearInterval(sweep),
    () => clearTimeout(catchUpTimer),
    () => bus.close(),
    () => api.close(),
    () => discovery.close(),
    () => (apiDiscovery === discovery ? undefined : apiDiscovery.close()),
  ],
});

await listenAndRegister({
  name: 'bridge',
  server,
  config,
  log,
  graceful,
  onRegistered: (r) => {
    registration = r;
  },
});
health.markReady();
