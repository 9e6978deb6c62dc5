/**
 * Plain-text tables for the `phare ports` commands (no colours: output goes to CI logs as often as to
 * terminals).
 */
import type { PortsProblem } from './model.ts';

/**
 * Renders rows as a left-aligned table with a header row.
 *
 * @example
 * table(['PORT', 'OWNER'], [['8000', 'api']]);
 */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The problems table of `phare ports check`: where, key, what is wrong, expected, found and the fix.
 *
 * @example
 * io.stdout(problemsTable(report.problems));
 */
export function problemsTable(problems: PortsProblem[]): string {
  return table(
    ['SEVERITY', 'WHERE', 'KEY', 'PROBLEM', 'EXPECTED', 'FOUND', 'FIX'],
    problems.map((p) => [
      p.severity,
      `${p.file}${p.line ? `:${p.line}` : ''}`,
      p.key,
      p.message,
      p.expected,
      p.found,
      p.fix,
    ]),
  );
}
