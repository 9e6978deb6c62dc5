/**
 * `phare ports check`: the rules a `ports.yaml` must satisfy, plus "every target in sync" and, with a
 * running agent, "registered ports match the file".
 */
import { type AgentCheckOptions, checkAgent } from './agent-check.ts';
import { describeAllocation, loadPorts, type PortsProblem } from './model.ts';
import { checkRules } from './rules.ts';
import { planSync } from './sync.ts';

export { checkRules, FIRST_UNPRIVILEGED_PORT } from './rules.ts';

/** Options of {@link checkPorts}. */
export interface CheckOptions {
  /** Also report targets out of sync. @default true */
  sync?: boolean;
  /** Also compare the ports of services registered with this agent. */
  agent?: AgentCheckOptions;
}

/** Result of {@link checkPorts}. */
export interface CheckReport {
  /** No errors (warnings allowed). */
  ok: boolean;
  problems: PortsProblem[];
  summary: {
    environments: number;
    components: number;
    infrastructure: number;
    allocations: number;
    targets: number;
    files: number;
  };
}

/**
 * Runs every check on a `ports.yaml`: schema, ranges, duplicates, targets in sync, and (optionally) the
 * agent's registered services.
 *
 * @example
 * const report = await checkPorts('ports.yaml');
 * if (!report.ok) process.exitCode = 1;
 */
export async function checkPorts(file: string, options: CheckOptions = {}): Promise<CheckReport> {
  const { model, problems } = loadPorts(file);
  const summary = {
    environments: 0,
    components: 0,
    infrastructure: 0,
    allocations: 0,
    targets: 0,
    files: 0,
  };
  if (model) {
    problems.push(...checkRules(model));
    if (options.sync !== false) {
      const plan = planSync(model);
      problems.push(...plan.problems);
      for (const s of plan.states) {
        if (s.inSync) continue;
        const t = s.target;
        problems.push({
          rule: 'out-of-sync',
          severity: 'error',
          file: t.file,
          ...(s.line ? { line: s.line } : {}),
          key: t.where.slice(t.file.length + 1),
          message: `out of sync: ${t.type} target of ${describeAllocation(t.allocation)}`,
          expected: JSON.stringify(s.expected),
          found: s.found === undefined ? 'missing' : JSON.stringify(s.found),
          fix: 'run phare ports sync',
        });
      }
    }
    if (options.agent) problems.push(...(await checkAgent(model, options.agent)));
    summary.environments = Object.keys(model.config.environments).length;
    summary.components = Object.keys(model.config.components ?? {}).length;
    summary.infrastructure = Object.keys(model.config.infrastructure?.services ?? {}).length;
    summary.allocations = model.allocations.length;
    summary.targets = model.targets.length;
    summary.files = new Set(model.targets.map((t) => t.path)).size;
  }
  return { ok: !problems.some((p) => p.severity === 'error'), problems, summary };
}
