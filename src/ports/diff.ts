/**
 * A small unified diff (LCS over lines) for `phare ports sync --dry-run`. Target files are config files
 * of at most a few thousand lines, so the O(n·m) table is fine; no diff package is installed.
 */

type Op = { kind: ' ' | '-' | '+'; text: string };

/**
 * Unified diff of two texts, `git diff` style, with `context` lines around each change. Empty when equal.
 *
 * @example
 * process.stdout.write(unifiedDiff('a.yaml', before, after));
 */
export function unifiedDiff(file: string, before: string | null, after: string, context = 3): string {
  if (before === after) return '';
  const a = before === null || before === '' ? [] : splitLines(before);
  const b = after === '' ? [] : splitLines(after);
  const ops = diffLines(a, b);
  const header = `--- ${before === null ? '/dev/null' : `a/${file}`}\n+++ b/${file}\n`;
  let out = '';
  let i = 0;
  while (i < ops.length) {
    if (ops[i]!.kind === ' ') {
      i++;
      continue;
    }
    // Grow a hunk from this change until a run of more than 2*context unchanged lines.
    let start = Math.max(0, i - context);
    let end = i;
    while (end < ops.length) {
      if (ops[end]!.kind !== ' ') {
        end++;
        continue;
      }
      let run = end;
      while (run < ops.length && ops[run]!.kind === ' ') run++;
      if (run === ops.length || run - end > 2 * context) {
        end = Math.min(run, end + context);
        break;
      }
      end = run;
    }
    start = Math.max(0, start);
    const hunk = ops.slice(start, end);
    const aStart = ops.slice(0, start).filter((o) => o.kind !== '+').length;
    const bStart = ops.slice(0, start).filter((o) => o.kind !== '-').length;
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    out += `@@ -${aLen === 0 ? aStart : aStart + 1},${aLen} +${bLen === 0 ? bStart : bStart + 1},${bLen} @@\n`;
    for (const o of hunk) out += `${o.kind}${o.text}\n`;
    i = end;
  }
  return header + out;
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  else lines[lines.length - 1] += '\n\\ No newline at end of file';
  return lines;
}

function diffLines(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = LCS length of a[i..] and b[j..]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      ops.push({ kind: ' ', text: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) ops.push({ kind: '-', text: a[i++]! });
    else ops.push({ kind: '+', text: b[j++]! });
  }
  while (i < n) ops.push({ kind: '-', text: a[i++]! });
  while (j < m) ops.push({ kind: '+', text: b[j++]! });
  return ops;
}
