// The notes store: a title check (pure, unit-tested) and SQL against PostgreSQL (integration-tested).

/** A note title: 1-200 characters, trimmed. */
export function validTitle(title) {
  const t = String(title ?? '').trim();
  if (t.length === 0 || t.length > 200) throw new Error('title: expected 1-200 characters');
  return t;
}

/** Creates the table (idempotent). */
export async function migrate(db) {
  await db.query('CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, title text NOT NULL)');
}

/** Adds a note; resolves with its id. */
export async function addNote(db, title) {
  const { rows } = await db.query('INSERT INTO notes (title) VALUES ($1) RETURNING id', [validTitle(title)]);
  return rows[0].id;
}

/** Every note's title, oldest first. */
export async function listTitles(db) {
  const { rows } = await db.query('SELECT title FROM notes ORDER BY id');
  return rows.map((r) => r.title);
}
