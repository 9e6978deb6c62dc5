/**
 * What `phare test` prints for examples/monorepo, shared by the engine tests and the README tour.
 */
import assert from 'node:assert/strict';

/** A passed row of the summary table (`infra` is a regex source). */
export function passedRow(component: string, category: string, infra: string): RegExp {
  return new RegExp(`^${component}\\s+${category}\\s+${infra}\\s+\\S+ m?s\\s+passed$`, 'm');
}

/** Asserts the summary of a full run of the example: six rows, passed, each on the right infrastructure. */
export function assertExampleSummary(output: string, message = output): void {
  for (const [name, category, infra] of [
    ['notes', 'unit', 'host'],
    ['notes', 'integration', 'postgres \\(notes-[0-9a-f]{6}\\)'],
    ['bus', 'unit', 'host'],
    ['bus', 'integration', 'host'],
    ['cache', 'unit', 'host'],
    ['cache', 'integration', 'redis \\(cache-[0-9a-f]{6}\\)'],
  ] as const)
    assert.match(output, passedRow(name, category, infra), message);
}
