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
}
