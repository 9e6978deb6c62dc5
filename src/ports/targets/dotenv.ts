/**
 * `.env` targets: `KEY=value` lines as Compose and dotenv read them. Only the value bytes of the
 * variable's line(s) change; other lines, comments, `export ` prefixes and quoting are kept. When a name
 * appears twice every occurrence is updated (dotenv and Compose let the last one win, so an old copy
 * would silently override the synced one otherwise).
 */
import type { TargetEditor } from './editor.ts';

interface Found {
  line: number;
  prefix: string;
  quote: '' | '"' | "'";
  value: string;
  suffix: string;
}

/** A variable in a `.env` file. */
export const dotenvEditor: TargetEditor = {
  read(text, t) {
    const found = scan(text.split(/\r?\n/), t.var!);
    return found.at(-1)?.value;
  },
  write(text, t) {
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    const lines = text.split(/\r?\n/);
    const value = String(t.value);
    const found = scan(lines, t.var!);
    if (found.length === 0) {
      if (lines.at(-1) === '') lines.pop();
      lines.push(`${t.var}=${quoteIfNeeded(value)}`, '');
      return lines.join(eol);
    }
    for (const f of found) {
      const q = f.quote === '' && /[\s#"']/.test(value) ? '"' : f.quote;
      lines[f.line] = `${f.prefix}${q}${value}${q}${f.suffix}`;
    }
    return lines.join(eol);
  },
  line(text, t) {
    const found = scan(text.split(/\r?\n/), t.var!).at(-1);
    return found === undefined ? undefined : found.line + 1;
  },
};

function scan(lines: string[], name: string): Found[] {
  const out: Found[] = [];
  const re = new RegExp(`^(\\s*(?:export\\s+)?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*=\\s*)(.*)$`);
  lines.forEach((text, line) => {
    const m = re.exec(text);
    if (!m) return;
    const prefix = m[1]!;
    const rest = m[2]!;
    const q = rest[0];
    if (q === '"' || q === "'") {
      let end = 1;
      while (end < rest.length && !(rest[end] === q && rest[end - 1] !== '\\')) end++;
      out.push({ line, prefix, quote: q, value: rest.slice(1, end), suffix: rest.slice(end + 1) });
    } else {
      // An unquoted value ends at " #" (a trailing comment), as in dotenv and Compose.
      const hash = rest.search(/\s+#/);
      const value = hash === -1 ? rest.trimEnd() : rest.slice(0, hash);
      out.push({ line, prefix, quote: '', value, suffix: rest.slice(value.length) });
    }
  });
  return out;
}

function quoteIfNeeded(value: string): string {
  return /[\s#"']/.test(value) ? JSON.stringify(value) : value;
}
