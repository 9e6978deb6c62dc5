/**
 * Issue 11 point 9: start-up on damaged data. A new data dir starts empty; one whose database vanished or
 * was truncated, that is not SQLite, fails its integrity check, holds a bad row or a foreign table, or comes
 * from a newer Phare is refused — exit 2, a message naming the file (and the row) and what to do, never a
 * stack trace. Schema-1 keys (`node + "\0" + id`) are migrated.
 */
import assert from 'node:assert/strict';
import {
  appendFileSync,
  closeSync,
  cpSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, test } from 'node:test';
import { call } from '../fixtures/http.ts';
import { spawnAgent, startAgentInProcess, tempDir, waitFor } from '../helpers/agent.ts';
import { agentRefusal } from '../helpers/faults.ts';

const root = tempDir('phare-damaged-');
after(() => root.remove());
const NODE = 'dmg';
const args = (dir: string) => [
  '--data-dir',
  dir,
  '--http-addr',
  '127.0.0.1:0',
  '--dns-addr',
  '',
  '--node',
  NODE,
];
let n = 0;

/** A data dir an agent used: 20 services with TTL checks, stopped cleanly (no WAL left). */
const golden = join(root.path, 'golden');
before(async () => {
  const a = await startAgentInProcess({ dataDir: golden, flags: { node: NODE } });
  for (let i = 0; i < 20; i++) {
    const r = await call(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'web',
      ID: `web-${i}`,
      Check: { TTL: '1h', CheckID: `ttl-${i}` },
    });
    assert.equal(r.status, 200, r.text);
  }
  await a.close();
});

/** A copy of the golden data dir, damaged by `damage`. */
function damagedCopy(damage: (db: string) => void): string {
  const dir = join(root.path, `case-${++n}`);
  cpSync(golden, dir, { recursive: true });
  damage(join(dir, 'phare.db'));
  return dir;
}

function sql(file: string, statements: string): void {
  const db = new DatabaseSync(file);
  try {
    db.exec(statements);
  } finally {
    db.close();
  }
}

/** Starts an agent in-process on `dir`, expecting the refusal `message`. */
async function refused(dir: string, message: RegExp): Promise<void> {
  await assert.rejects(
    startAgentInProcess({ dataDir: dir, flags: { node: NODE } }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_STORE_DAMAGED', err.message);
      assert.match(err.message, message);
      assert.match(err.message, /another --data-dir|backup/, 'the message says what to do');
      return true;
    },
  );
}

test('the process: a vanished database and a bad row exit 2 with the file and row named, no stack trace', async () => {
  const vanished = damagedCopy((db) => rmSync(db));
  const r1 = await agentRefusal(args(vanished));
  assert.equal(r1.code, 2, r1.output);
  assert.match(r1.output, /phare\.db is missing, but this data dir held a store/);
  assert.doesNotMatch(r1.output, /\n\s+at /, 'a stack trace');

  const badRow = damagedCopy((db) => sql(db, "UPDATE services SET value = '{oops' WHERE key = 'dmg/web-7'"));
  const r2 = await agentRefusal(args(badRow));
  assert.equal(r2.code, 2, r2.output);
  assert.match(r2.output, /phare\.db has a bad row: table services, rowid \d+, key "dmg\/web-7": not JSON/);
  assert.doesNotMatch(r2.output, /\n\s+at /, 'a stack trace');
});

test('truncated to 0 bytes, truncated halfway, not SQLite at all: refused', async () => {
  await refused(
    damagedCopy((db) => truncateSync(db, 0)),
    /is empty \(0 bytes\).*truncated/,
  );
  await refused(
    damagedCopy((db) => truncateSync(db, Math.floor(statSync(db).size / 2))),
    /damaged \(integrity check|not a readable SQLite database/,
  );
  await refused(
    damagedCopy((db) => writeFileSync(db, Buffer.alloc(statSync(db).size, 'garbage!'))),
    /not a readable SQLite database/,
  );
});

test('a row of the wrong shape, a foreign table, a newer schema: refused, naming what is wrong', async () => {
  await refused(
    damagedCopy((db) =>
      sql(db, `UPDATE checks SET value = '{"checkId":"ttl-3","status":"fine"}' WHERE key = 'dmg/ttl-3'`),
    ),
    /table checks, rowid \d+, key "dmg\/ttl-3": field "node": expected a non-empty string/,
  );
  await refused(
    damagedCopy((db) =>
      sql(db, 'DROP TABLE checks; CREATE TABLE checks (id INTEGER PRIMARY KEY, payload BLOB)'),
    ),
    /has a table "checks" that is not Phare's \(columns: id INTEGER PRIMARY KEY, payload BLOB/,
  );
  await refused(
    damagedCopy((db) => sql(db, "UPDATE meta SET value = '99' WHERE key = 'schema'")),
    /key schema "99"; this Phare reads schema 2 and older/,
  );
});

test('a new data dir starts empty; the same dir emptied of its database does not', async () => {
  const dir = join(root.path, 'fresh');
  const a = await startAgentInProcess({ dataDir: dir, flags: { node: NODE } });
  assert.deepEqual((await call(a.url, 'GET', '/v1/agent/services')).json(), {});
  await a.close();
  rmSync(join(dir, 'phare.db'));
  await refused(dir, /is missing, but this data dir held a store/);
});

test('schema-1 keys (node + NUL + id) are migrated; a deregistration after it sticks', async () => {
  const dir = damagedCopy((db) =>
    sql(
      db,
      // what a Phare before key schema 2 wrote
      `UPDATE services SET key = replace(key, '/', char(0));
       UPDATE checks SET key = replace(key, '/', char(0));
       DELETE FROM meta WHERE key = 'schema';`,
    ),
  );
  const a = await startAgentInProcess({ dataDir: dir, flags: { node: NODE } });
  assert.equal(Object.keys((await call(a.url, 'GET', '/v1/agent/services')).json<object>()).length, 20);
  assert.equal((await call(a.url, 'PUT', '/v1/agent/service/deregister/web-0')).status, 200);
  await a.close();
  const keys = (() => {
    const db = new DatabaseSync(join(dir, 'phare.db'));
    try {
      return (db.prepare('SELECT key FROM services ORDER BY key').all() as { key: string }[]).map(
        (r) => r.key,
      );
    } finally {
      db.close();
    }
  })();
  assert.equal(keys.length, 19);
  assert.ok(
    keys.every((k) => k.startsWith('dmg/') && !k.includes('\u0000')),
    keys.join(','),
  );
  const b = await spawnAgent(args(dir));
  const services = (await call(b.url, 'GET', '/v1/agent/services')).json<object>();
  assert.equal('web-0' in services, false, 'the deregistered service came back');
  assert.equal(Object.keys(services).length, 19);
  b.child.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);

  // a schema-1 row with a NUL inside a name cannot be migrated: refused, naming the row
  const nul = damagedCopy((db) =>
    sql(
      db,
      `UPDATE services SET key = 'dmg' || char(0) || 'x' || char(0) || 'y' WHERE key = 'dmg/web-1'; DELETE FROM meta WHERE key = 'schema';`,
    ),
  );
  await refused(nul, /key cannot be migrated: table services, rowid \d+.*delete that row/);
  assert.ok(readFileSync(join(nul, 'node-id'), 'utf8').length > 0);
});

test('the write-ahead log: garbage appended loses nothing; a foreign header is refused; a damaged last frame is reported', async () => {
  // A copy taken while the agent runs, in one synchronous call, is what a kill -9 leaves: WAL and all.
  const live = join(root.path, 'live');
  const a = await startAgentInProcess({ dataDir: live, flags: { node: NODE } });
  for (let i = 0; i < 20; i++)
    assert.equal(
      (await call(a.url, 'PUT', '/v1/agent/service/register', { Name: 'w', ID: `w-${i}` })).status,
      200,
    );
  const crashed = (name: string) => {
    const dir = join(root.path, name);
    cpSync(live, dir, { recursive: true });
    rmSync(join(dir, 'agent.lock-journal'), { force: true });
    return dir;
  };
  const appended = crashed('wal-appended');
  const header = crashed('wal-header');
  const tail = crashed('wal-tail');
  await a.close();
  const wal = (dir: string) => join(dir, 'phare.db-wal');
  assert.ok(statSync(wal(appended)).size > 0, 'the copy has no write-ahead log');

  appendFileSync(wal(appended), Buffer.alloc(3000, 0x5a));
  const b = await startAgentInProcess({ dataDir: appended, flags: { node: NODE } });
  assert.equal(Object.keys((await call(b.url, 'GET', '/v1/agent/services')).json<object>()).length, 20);
  await b.close();

  overwrite(wal(header), 0, 'not a WAL header');
  await refused(header, /write-ahead log .*phare\.db-wal \(\d+ bytes\) whose header is not SQLite's/);

  overwrite(wal(tail), statSync(wal(tail)).size - 64, 'garbage over the last frame');
  const c = await spawnAgent(args(tail));
  await waitFor(
    () => /phare\.db-wal is damaged at byte \d+, after \d+ valid commits/.test(c.output()),
    5000,
    'the warning',
  );
  c.child.kill('SIGTERM');
  const exit = await c.exited;
  assert.equal(exit.code, 0, `${JSON.stringify(exit)}\n${c.output()}`);
});

function overwrite(file: string, at: number, text: string): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.from(text), 0, text.length, at);
  } finally {
    closeSync(fd);
  }
}
