/**
 * api — a small notes API on PostgreSQL.
 *
 *   POST /notes {"text": "..."}        -> 201 the note; publishes `notes.created` to the bus
 *   GET  /notes[?processed=false]      -> the latest 100 notes
 *   GET  /notes/:id                    -> one note
 *   PUT  /notes/:id/summary {"words": 3, "processedBy": "bridge"}   (what the bridge calls; idempotent)
 *
 * Every answer carries `x-instance`, so you can watch a caller move between instances.
 * Readiness (/health/ready) fails while the table is not created yet and whenever PostgreSQL does not
 * answer `SELECT 1`, so the agent stops routing to an api that cannot reach its database. The bus is not a
 * readiness dependency (events are queued while it is away): it shows up as a warning on /health only.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pg from 'pg';
import { createDiscovery, type Registration } from 'phare';
import { createGracefulShutdown, createHealth, eventLoopDelayCheck, postgresCheck } from 'phare/health';
import { z } from 'zod';
import { connectBus } from '../lib/bus-client.ts';
import { readJson, sendJson } from '../lib/http.ts';
import { createLogger } from '../lib/logger.ts';
import { registryAddress } from '../lib/schema.ts';
import { listenAndRegister } from '../lib/serve.ts';
import { loadApiConfig } from './config.ts';

const config = loadApiConfig();
const log = createLogger('api', config.log.level);
const instance = `api@${config.server.advertise}:${config.server.port}`;

const pool = new pg.Pool({
  host: config.database.host,
  port: config.database.port,
  user: config.database.user,
  password: config.database.password,
  database: config.database.name,
  max: config.database.poolSize,
  connectionTimeoutMillis: 2000,
});
// Without a listener, pg crashes the process when the database goes away; readiness reports it instead.
pool.on('error', (err) => log.warn({ err: err.message }, 'idle database connection lost'));

const discovery = createDiscovery({ consul: { address: registryAddress(config.registry) }, logger: log });
const bus = connectBus({ url: config.bus.url, discovery, logger: log });

const health = createHealth({
  logger: log,
  checks: {
    db: postgresCheck(pool), // SELECT 1, critical: /health/ready answers 503 without the database
    eventLoop: eventLoopDelayCheck({ maxDelayMs: 1000 }),
    bus: {
      probes: [], // /health only: the api serves requests without the bus
      critical: false,
      run: async () => {
        if (!bus.connected) throw new Error('not connected to the bus; events are queued');
        return `connected to ${bus.endpoint}`;
      },
    },
  },
});

const NoteInput = z.strictObject({ text: z.string().trim().min(1).max(2000) });
const SummaryInput = z.strictObject({
  words: z.number().int().min(0),
  processedBy: z.string().min(1).max(200),
});

interface NoteRow {
  id: number;
  text: string;
  created_at: Date;
  words: number | null;
  processed_at: Date | null;
  processed_by: string | null;
}
const toNote = (r: NoteRow) => ({
  id: r.id,
  text: r.text,
  createdAt: r.created_at,
  words: r.words,
  processedAt: r.processed_at,
  processedBy: r.processed_by,
});

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('x-instance', instance);
  const url = new URL(req.url ?? '/', 'http://api');
  const byId = /^\/notes\/(\d+)(\/summary)?$/.exec(url.pathname);

  if (url.pathname === '/notes' && req.method === 'GET') {
    const processed = url.searchParams.get('processed');
    const where =
      processed === 'false'
        ? 'WHERE processed_at IS NULL'
        : processed === 'true'
          ? 'WHERE processed_at IS NOT NULL'
          : '';
    const { rows } = await pool.query<NoteRow>(`SELECT * FROM notes ${where} ORDER BY id DESC LIMIT 100`);
    return sendJson(res, 200, rows.map(toNote));
  }
  if (url.pathname === '/notes' && req.method === 'POST') {
    const input = NoteInput.safeParse(await readJson(req));
    if (!input.success) return sendJson(res, 400, { error: 'expected {"text": "<1-2000 characters>"}' });
    const { rows } = await pool.query<NoteRow>('INSERT INTO notes (text) VALUES ($1) RETURNING *', [
      input.data.text,
    ]);
    const note = toNote(rows[0] as NoteRow);
    bus.publish('notes.created', { id: note.id, text: note.text, by: instance });
    return sendJson(res, 201, note);
  }
  if (byId && !byId[2] && req.method === 'GET') {
    const { rows } = await pool.query<NoteRow>('SELECT * FROM notes WHERE id = $1', [Number(byId[1])]);
    return rows[0]
      ? sendJson(res, 200, toNote(rows[0]))
      : sendJson(res, 404, { error: `note ${byId[1]} not found` });
  }
  if (byId?.[2] && req.method === 'PUT') {
    const input = SummaryInput.safeParse(await readJson(req));
    if (!input.success)
      return sendJson(res, 400, { error: 'expected {"words": <int>, "processedBy": "<name>"}' });
    const { rows } = await pool.query<NoteRow>(
      'UPDATE notes SET words = $2, processed_by = $3, processed_at = coalesce(processed_at, now()) WHERE id = $1 RETURNING *',
      [Number(byId[1]), input.data.words, input.data.processedBy],
    );
    return rows[0]
      ? sendJson(res, 200, toNote(rows[0]))
      : sendJson(res, 404, { error: `note ${byId[1]} not found` });
  }
  sendJson(res, 404, { error: 'not found; try GET /notes' });
}

const server = createServer((req, res) => {
  if (health.handle(req, res)) return;
  route(req, res).catch((err: Error) => {
    log.error({ err: err.message, url: req.url }, 'request failed');
    // 503 for a database that is away: the caller's client retries another instance (idempotent requests).
    if (!res.headersSent) sendJson(res, 503, { error: err.message });
    else res.destroy();
  });
});

/** Creates the table; retried until the database answers (the api stays "starting" meanwhile). */
async function migrate(): Promise<void> {
  for (let attempt = 1; !graceful.shuttingDown; attempt++) {
    try {
      await pool.query(`CREATE TABLE IF NOT EXISTS notes (
        id serial PRIMARY KEY,
        text text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        words integer,
        processed_at timestamptz,
        processed_by text
      )`);
      return;
    } catch (err) {
      const delay = Math.min(5000, 250 * 2 ** attempt);
      log.warn({ err: (err as Error).message, attempt, retryInMs: delay }, 'database not reachable yet');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

let registration: Registration | undefined;
const graceful = createGracefulShutdown({
  server,
  health,
  logger: log,
  drainDelayMs: config.shutdown.drainDelayMs,
  timeoutMs: config.shutdown.timeoutMs,
  beforeShutdown: () => registration?.deregister(),
  onShutdown: [() => bus.close(), () => discovery.close(), () => pool.end()],
});

await listenAndRegister({
  name: 'api',
  server,
  config,
  log,
  graceful,
  onRegistered: (r) => {
    registration = r;
  },
});
if (!graceful.shuttingDown) {
  await migrate();
  health.markReady();
  log.info('api ready');
}
