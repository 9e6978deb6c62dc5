/**
 * The static rules a `ports.yaml` must satisfy (ranges, ports inside them, no port used twice, one value per
 * place). Their own module because both `check` and `sync` apply them.
 */
import {
  type Allocation,
  describeAllocation,
  keyString,
  type PortsModel,
  type PortsProblem,
  rangeOf,
} from './model.ts';
import type { PortRange } from './schema.ts';

/** Ports below this need root (or CAP_NET_BIND_SERVICE) to bind, so ranges must start at or above it. */
export const FIRST_UNPRIVILEGED_PORT = 1024;

/**
 * The static rules: ranges are valid and disjoint, every port lies in its range, no host port is used
 * twice (all environments run at once on one host), no two targets write different values to one place.
 *
 * @example
 * const problems = checkRules(model);
 */
export function checkRules(model: PortsModel): PortsProblem[] {
  const problems: PortsProblem[] = [];
  const at = (keys: string[]) => ({ file: model.name, ...model.locate(keys), key: keyString(keys) });
  const ranges: { name: string; range: PortRange; key: string[] }[] = [];
  for (const [name, env] of Object.entries(model.config.environments)) {
    ranges.push({ name, range: env.range, key: ['environments', name, 'range'] });
  }
  if (model.config.infrastructure) {
    ranges.push({
      name: 'infrastructure',
      range: model.config.infrastructure.range,
      key: ['infrastructure', 'range'],
    });
  }
  for (const r of ranges) {
    if (r.range.from > r.range.to) {
      problems.push({
        rule: 'range',
        severity: 'error',
        ...at(r.key),
        message: `range of ${r.name} is empty: from is above to`,
        expected: 'from <= to',
        found: fmtRange(r.range),
        fix: 'swap from and to',
      });
    } else if (r.range.from < FIRST_UNPRIVILEGED_PORT) {
      problems.push({
        rule: 'range',
        severity: 'error',
        ...at(r.key),
        message: `range of ${r.name} starts below ${FIRST_UNPRIVILEGED_PORT}; those ports need root to bind`,
        expected: `from >= ${FIRST_UNPRIVILEGED_PORT}`,
        found: fmtRange(r.range),
        fix: `move the range to ${FIRST_UNPRIVILEGED_PORT} or above`,
      });
    }
  }
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.range.from <= b.range.to && b.range.from <= a.range.to) {
        problems.push({
          rule: 'range-overlap',
          severity: 'error',
          ...at(b.key),
          message: `range of ${b.name} overlaps the range of ${a.name}`,
          expected: `disjoint from ${a.name} ${fmtRange(a.range)}`,
          found: fmtRange(b.range),
          fix: `move ${b.name} to ports outside ${fmtRange(a.range)}`,
        });
      }
    }
  }
  for (const a of model.allocations) {
    const r = rangeOf(model.config, a);
    if (!r) {
      problems.push({
        rule: 'out-of-range',
        severity: 'error',
        ...at(a.key),
        message: `${a.owner} is infrastructure but ports.yaml has no infrastructure.range`,
        expected: 'infrastructure.range',
        found: 'none',
        fix: 'add infrastructure: { range: { from, to } }',
      });
    } else if (a.port < r.range.from || a.port > r.range.to) {
      problems.push({
        rule: 'out-of-range',
        severity: 'error',
        ...at(a.key),
        message: `port of ${describeAllocation(a)} is outside the ${r.name} range`,
        expected: `${fmtRange(r.range)}`,
        found: String(a.port),
        fix: `pick a port in ${fmtRange(r.range)} (phare ports next --env ${r.name})`,
      });
    }
  }
  const byPort = new Map<number, Allocation>();
  for (const a of model.allocations) {
    const first = byPort.get(a.port);
    if (!first) {
      byPort.set(a.port, a);
      continue;
    }
    const line = model.locate(first.key)?.line;
    problems.push({
      rule: 'duplicate-port',
      severity: 'error',
      ...at(a.key),
      message: `host port ${a.port} of ${describeAllocation(a)} is already used by ${describeAllocation(first)}`,
      expected: 'a port no other component uses in any environment',
      found: `${a.port} (also ${keyString(first.key)}${line ? `, line ${line}` : ''})`,
      fix: `give one of them another port (phare ports next --env ${rangeOf(model.config, a)?.name ?? a.env})`,
    });
  }
  const byPlace = new Map<string, (typeof model.targets)[number]>();
  for (const t of model.targets) {
    const place = `${t.path}\0${t.where}`;
    const first = byPlace.get(place);
    if (!first) {
      byPlace.set(place, t);
      continue;
    }
    if (first.value === t.value) continue;
    problems.push({
      rule: 'duplicate-target',
      severity: 'error',
      ...at(t.origin),
      message: `${t.where} is written by ${describeAllocation(first.allocation)} and ${describeAllocation(t.allocation)}`,
      expected: 'one value per location',
      found: `${JSON.stringify(first.value)} and ${JSON.stringify(t.value)}`,
      fix: 'add {env} to the file or key, or set env: on the target',
    });
  }
  return problems;
}

function fmtRange(r: PortRange): string {
  return `${r.from}-${r.to}`;
}
