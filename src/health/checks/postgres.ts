/**
 * PostgreSQL check: `SELECT 1` through the service's own `pg` Pool or Client. The driver is the user's;
 * the health kit never imports it (drivers are optional peers), it only needs a `query(text)` method.
 */
import type { CheckOptions, CheckSpec } from '../types.ts';

/** What the check needs of a `pg` Pool or Client (or any driver with the same method). */
export interface PostgresLike {
  query(text: string): Promise<unknown>;
}

/** Options of {@link postgresCheck}. */
export interface PostgresCheckOptions extends CheckOptions {
  /** The statement to run. @default "SELECT 1" */
  query?: string;
}

/**
 * Checks a PostgreSQL connection with `SELECT 1`. Pass a `pg.Pool`: a pool reconnects after the database
 * restarts, a lone `pg.Client` stays broken once its connection dropped. Give the pool an `error` listener
 * (`pool.on('error', …)`) — without one, `pg` crashes the process when the server goes away.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 1000 });
 * pool.on('error', (err) => log.warn({ err }, 'idle client error'));
 * const health = createHealth({ checks: { db: postgresCheck(pool) } });
 */
export function postgresCheck(client: PostgresLike, options: PostgresCheckOptions = {}): CheckSpec {
  const { query = 'SELECT 1', ...rest } = options;
  return {
    ...rest,
    async run() {
      await client.query(query);
      return `${query}: ok`;
    },
  };
}
