/**
 * Store keys: a row's key is its parts (node, then service or check ID) joined by `/`, each part with `%`
 * and `/` escaped (`%25`, `%2F`). The escape is total and injective, so two different tuples never share a
 * key whatever characters they hold — unlike the `node + "\0" + id` keys of schema 1, where node `n1\0x`
 * with service `y` and node `n1` with service `x\0y` were one row (issue 11 §4).
 */

/**
 * The key of a row made of `parts`.
 *
 * @example
 * storeKey('n1', 'web/1'); // 'n1/web%2F1'
 */
export function storeKey(...parts: string[]): string {
  // the catalog builds a key per row it touches: node + ID, nearly always with nothing to escape
  if (parts.length === 2) return `${escapePart(parts[0] as string)}/${escapePart(parts[1] as string)}`;
  return parts.map(escapePart).join('/');
}

function escapePart(p: string): string {
  return p.includes('%') || p.includes('/') ? p.replaceAll('%', '%25').replaceAll('/', '%2F') : p;
}

/** The layout version of keys; the sqlite store records it and migrates older data when it opens. */
export const KEY_SCHEMA = 2;
