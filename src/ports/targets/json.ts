/**
 * JSON targets. JSON has no comments, so we re-serialise with the file's own indentation and final
 * newline; a file whose value is already right is never rewritten (byte-for-byte unchanged).
 */
import type { ResolvedTarget } from '../model.ts';
import type { TargetEditor } from './editor.ts';
import { targetError } from './yaml.ts';

/** A key path in a JSON file. */
export const jsonEditor: TargetEditor = {
  read(text, t) {
    let node: unknown = parse(text, t);
    for (const k of t.key!) {
      if (node === null || typeof node !== 'object') return undefined;
      node = (node as Record<string, unknown>)[k];
    }
    return node;
  },
  write(text, t) {
    const root = parse(text, t);
    let node = root as Record<string, unknown>;
    const keys = t.key!;
    keys.forEach((k, i) => {
      if (i === keys.length - 1) {
        node[k] = t.value;
        return;
      }
      const next = node[k];
      if (next === undefined || next === null) node[k] = /^\d+$/.test(keys[i + 1]!) ? [] : {};
      else if (typeof next !== 'object') {
        throw targetError(
          t,
          `${keys.slice(0, i + 1).join('.')} is a ${typeof next}, cannot set ${keys.join('.')}`,
        );
      }
      node = node[k] as Record<string, unknown>;
    });
    const indent = /^\{\s*\n([ \t]+)/.exec(text)?.[1] ?? (text.trim() === '' || text.includes('\n') ? 2 : 0);
    const eol = text.includes('\r\n') ? '\r\n' : '\n';
    let out = JSON.stringify(root, null, indent);
    if (eol !== '\n') out = out.replace(/\n/g, eol);
    return text === '' || /\r?\n$/.test(text) ? out + eol : out;
  },
};

function parse(text: string, t: ResolvedTarget): Record<string, unknown> {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw targetError(t, `invalid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw targetError(t, 'expected a JSON object at the top level');
  }
  return value as Record<string, unknown>;
}
