// Runs against the PostgreSQL of notes/docker-compose.test.yaml: phare test started it, waited until
// pg_isready passed and exported DATABASE_URL with the port it published.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { addNote, listTitles, migrate } from '../../src/notes.js';

const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
before(() => db.connect());
after(() => db.end());

test('notes are stored in PostgreSQL and read back in order', async () => {
  await migrate(db);
  await addNote(db, 'first');
  await addNote(db, 'second');
  assert.deepEqual(await listTitles(db), ['first', 'second']);
  const { rows } = await db.query('SELECT current_database() AS name');
  assert.equal(rows[0].name, 'notes_test');
});
