import type { ResolvedTarget } from '../model.ts';

/**
 * Reads and writes one kind of target. Editors are pure text -> text so that `sync` can compute every
 * file's new content, validate all of it, and only then write anything.
 */
export interface TargetEditor {
  /** The value at the target's location (`undefined` when absent). Throws when the file is unusable. */
  read(text: string, target: ResolvedTarget): unknown;
  /** The file text with the target's value written; other bytes are kept. Throws when impossible. */
  write(text: string, target: ResolvedTarget): string;
  /** 1-based line of the value in `text`, when the editor can tell (for problem reports). */
  line?(text: string, target: ResolvedTarget): number | undefined;
}

/**
 * 1-based line number of a character offset.
 *
 * @example
 * lineAt('a\nb', 2); // 2
 */
export function lineAt(text: string, offset: number | undefined): number | undefined {
  if (offset === undefined) return undefined;
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
