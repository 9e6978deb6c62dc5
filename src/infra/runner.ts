/**
 * `phare test`: for each selected component, its unit tests on the host, then — when it has a
 * `docker-compose.test.yaml` — its infrastructure started once for its integration and e2e tests (an
 * isolated project `<component>-<run id>`, host ports exported, every service healthy first), and always
 * torn down with `down -v`: on success, failure, Ctrl-C (the signal aborts), and — through the reaper run
 * at the next start — after the runner itself was killed. A component without a compose test file never
 * touches Docker. Components run `parallel` at a time; each command's output is streamed with a
 * `component:category |` prefix.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { agentUrl, table } from '../ports/index.ts';
import type { Component, Monorepo } from './components.ts';
import { createEngine, type Engine, type EngineOptions } from './engine.ts';
import { reap } from './reaper.ts';
import { CATEGORIES, type Category } from './schema.ts';
import { infraSource, type Stack, startStack } from './stack.ts';

/** The outcome of one component × category. */
export interface TestResult {
  component: string;
  category: Category;
  /** `host`, or the services and compose project it ran against. */
  infrastructure: string;
  durationMs: number;
  result: 'passed' | 'failed' | 'error' | 'interrupted';
  /** Why it did not pass. */
  message?: string;
  /** The tail of the command's output. */
  output: string;
}

/** Options of {@link runTests}. */
export interface RunTestsOptions {
  repo: Monorepo;
  components: Component[];
  /** Categories to run. @default all three */
  categories?: readonly Category[];
  /** Components at a time. @default 1 */
  parallel?: number;
  /** JUnit XML report path. */
  junit?: string;
  /** Environment of the commands and of Docker. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Docker CLIs. */
  engine?: EngineOptions;
  /**
   * Agent URL to wait on for services labelled `phare.service`.
   * @default the agent PHARE_HTTP_ADDR / CONSUL_HTTP_ADDR names, else none (not waited on)
   */
  agent?: string;
  /** Ctrl-C: stops the commands, tears everything down, results `interrupted`. */
  signal?: AbortSignal;
  /** Test output and the summary. */
  stdout(s: string): void;
  /** Progress and warnings. */
  stderr(s: string): void;
}

/** What {@link runTests} returns. */
export interface RunTestsReport {
  results: TestResult[];
  /** 0 all passed, 1 something failed, 130 interrupted. */
  code: number;
}

const TAIL = 16_000;

function runCommand(
  cmd: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  prefix: string,
  out: (s: string) => void,
  signal: AbortSignal | undefined,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    // its own process group, so Ctrl-C stops the whole tree (sh, npm, the test runner and its children)
    const child = spawn('sh', ['-c', cmd], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const partial = { stdout: '', stderr: '' };
    const take = (which: 'stdout' | 'stderr') => (d: Buffer) => {
      const text = partial[which] + d.toString();
      const lines = text.split('\n');
      partial[which] = lines.pop() ?? '';
      for (const l of lines) out(`${prefix} | ${l}\n`);
      tail = (tail + lines.map((l) => `${l}\n`).join('')).slice(-TAIL);
    };
    child.stdout.on('data', take('stdout'));
    child.stderr.on('data', take('stderr'));
    const kill = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        /* gone */
      }
    };
    let hard: NodeJS.Timeout | undefined;
    const onAbort = () => {
      kill('SIGINT');
      hard = setTimeout(() => kill('SIGKILL'), 5000);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      out(`${prefix} | ${err.message}\n`);
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(hard);
      for (const which of ['stdout', 'stderr'] as const)
        if (partial[which]) {
          out(`${prefix} | ${partial[which]}\n`);
          tail += `${partial[which]}\n`;
        }
      resolve({ code: code ?? (sig ? 128 + 2 : 1), output: tail.slice(-TAIL) });
    });
  });
}

function fmtDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** The summary table. */
export function summaryTable(results: TestResult[]): string {
  return table(
    ['COMPONENT', 'CATEGORY', 'INFRASTRUCTURE', 'DURATION', 'RESULT'],
    results.map((r) => [r.component, r.category, r.infrastructure, fmtDuration(r.durationMs), r.result]),
  );
}

const xml = (s: string) =>
  s
    // biome-ignore lint/suspicious/noControlCharactersInRegex: XML 1.0 cannot hold these
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

/**
 * JUnit XML (the Jenkins/GitLab dialect): one suite per component, one case per category.
 *
 * @example
 * writeFileSync('report.xml', junitXml(report.results));
 */
export function junitXml(results: TestResult[]): string {
  const byComp = new Map<string, TestResult[]>();
  for (const r of results) byComp.set(r.component, [...(byComp.get(r.component) ?? []), r]);
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const count = (rs: TestResult[], what: TestResult['result'][]) =>
    rs.filter((r) => what.includes(r.result)).length;
  const total = results.reduce((a, r) => a + r.durationMs, 0);
  let out = '<?xml version="1.0" encoding="UTF-8"?>\n';
  out += `<testsuites name="phare test" tests="${results.length}" failures="${count(results, ['failed'])}" errors="${count(results, ['error', 'interrupted'])}" time="${secs(total)}">\n`;
  for (const [comp, rs] of byComp) {
    out += `  <testsuite name="${xml(comp)}" tests="${rs.length}" failures="${count(rs, ['failed'])}" errors="${count(rs, ['error', 'interrupted'])}" time="${secs(rs.reduce((a, r) => a + r.durationMs, 0))}">\n`;
    for (const r of rs) {
      out += `    <testcase classname="${xml(comp)}" name="${xml(r.category)}" time="${secs(r.durationMs)}">\n`;
      out += `      <properties><property name="infrastructure" value="${xml(r.infrastructure)}"/></properties>\n`;
      if (r.result === 'failed')
        out += `      <failure message="${xml(r.message ?? 'failed')}">${xml(r.output)}</failure>\n`;
      else if (r.result !== 'passed')
        out += `      <error message="${xml(r.message ?? r.result)}">${xml(r.output)}</error>\n`;
      if (r.output) out += `      <system-out>${xml(r.output)}</system-out>\n`;
      out += '    </testcase>\n';
    }
    out += '  </testsuite>\n';
  }
  return `${out}</testsuites>\n`;
}

/** One component's plan: which categories run and whether they need its infrastructure. */
interface Plan {
  component: Component;
  categories: Category[];
  infra: ReturnType<typeof infraSource>;
}

/** Whether a category runs against the component's infrastructure. */
const needsInfra = (c: Category) => c !== 'unit';

/**
 * Runs the components' tests; never throws for a failing test or unhealthy infrastructure (those are
 * results), only for a configuration mistake found before anything started.
 *
 * @example
 * const { code } = await runTests({ repo, components: repo.components, stdout, stderr });
 */
export async function runTests(o: RunTestsOptions): Promise<RunTestsReport> {
  const env = o.env ?? process.env;
  // services labelled phare.service are waited on in this agent: --agent, else the one the environment
  // names (the SDK's variables), else none
  const agent =
    o.agent ?? (env['PHARE_HTTP_ADDR'] || env['CONSUL_HTTP_ADDR'] ? agentUrl(undefined, env) : undefined);
  const wanted = o.categories?.length ? o.categories : CATEGORIES;
  const plans: Plan[] = o.components.map((component) => {
    const categories = wanted.filter((c) => component.commands[c]);
    const infra = categories.some(needsInfra) ? infraSource(o.repo, component, 'test') : undefined;
    if (infra?.deprecated) o.stderr(`phare test: warning: ${infra.deprecated}\n`);
    return { component, categories, infra };
  });
  for (const p of plans)
    if (p.categories.length === 0)
      o.stderr(`phare test: ${p.component.name} has no ${wanted.join('/')} command; nothing to run\n`);
  // Docker is touched only when some component needs infrastructure: a host-only run never calls it
  let engine: Engine | undefined;
  let dockerError: string | undefined;
  if (plans.some((p) => p.infra)) {
    engine = createEngine({ ...o.engine, env });
    try {
      const reaped = await reap(engine);
      if (reaped.projects.length)
        o.stderr(
          `phare test: removed what killed runs left behind: ${reaped.projects.join(', ')} (${reaped.containers} containers, ${reaped.networks} networks, ${reaped.volumes} volumes)\n`,
        );
    } catch (err) {
      // the unit tests and the host-only components still run; the infrastructure ones are errors
      dockerError = `cannot reach Docker to start the test infrastructure: ${(err as Error).message}`;
      o.stderr(`phare test: ${dockerError}\n`);
    }
  }
  const results: TestResult[] = [];
  const signal = o.signal;
  const runPlan = async (plan: Plan) => {
    const comp = plan.component;
    let stack: Stack | undefined;
    let stackError: string | undefined;
    try {
      for (const category of plan.categories) {
        const started = Date.now();
        const base = { component: comp.name, category, output: '' };
        if (signal?.aborted) {
          results.push({
            ...base,
            infrastructure: '-',
            durationMs: 0,
            result: 'interrupted',
            message: 'interrupted',
          });
          continue;
        }
        let infrastructure = 'host';
        let extra: Record<string, string> = {};
        if (needsInfra(category) && (plan.infra || category === 'e2e')) {
          if (!plan.infra) {
            results.push({
              ...base,
              infrastructure: 'none',
              durationMs: 0,
              result: 'error',
              message: `${comp.name}: e2e tests run against infrastructure, but ${comp.path}/docker-compose.test.yaml does not exist`,
            });
            continue;
          }
          if (!stack && !stackError && dockerError) stackError = dockerError;
          if (!stack && !stackError) {
            try {
              stack = await startStack({
                engine: engine as Engine,
                repo: o.repo,
                component: comp,
                source: plan.infra,
                env: 'test',
                profiles: plan.categories.filter(needsInfra),
                processEnv: env,
                ...(agent ? { agent } : {}),
                ...(signal ? { signal } : {}),
                log: (l) => o.stderr(`phare test: ${l}\n`),
              });
              o.stderr(
                `phare test: ${comp.name}: ${stack.services.join(', ')} healthy in ${fmtDuration(Date.now() - started)} (${stack.project})\n`,
              );
            } catch (err) {
              stackError = (err as Error).message;
            }
          }
          if (!stack) {
            const interrupted = signal?.aborted;
            results.push({
              ...base,
              infrastructure: 'failed to start',
              durationMs: Date.now() - started,
              result: interrupted ? 'interrupted' : 'error',
              message: interrupted ? 'interrupted' : stackError,
              output: stackError ?? '',
            });
            if (!interrupted) o.stderr(`phare test: ${stackError}\n`);
            continue;
          }
          infrastructure = `${stack.services.join(', ')} (${stack.project})`;
          extra = stack.env;
        }
        const cmdEnv = {
          ...env,
          ...comp.env,
          ...extra,
          PHARE_TEST_COMPONENT: comp.name,
          PHARE_TEST_CATEGORY: category,
        };
        const r = await runCommand(
          comp.commands[category] as string,
          comp.dir,
          cmdEnv,
          `${comp.name}:${category}`,
          o.stdout,
          signal,
        );
        const result: TestResult['result'] = signal?.aborted
          ? 'interrupted'
          : r.code === 0
            ? 'passed'
            : 'failed';
        results.push({
          ...base,
          infrastructure,
          durationMs: Date.now() - started,
          result,
          output: r.output,
          ...(result === 'failed'
            ? { message: `exit code ${r.code}` }
            : result === 'interrupted'
              ? { message: 'interrupted' }
              : {}),
        });
      }
    } finally {
      if (stack) {
        await stack.down();
        o.stderr(`phare test: ${comp.name}: removed ${stack.project} (down -v)\n`);
      }
    }
  };
  const queue = [...plans];
  const workers = Array.from({ length: Math.max(1, Math.min(o.parallel ?? 1, queue.length)) }, async () => {
    for (let p = queue.shift(); p; p = queue.shift()) await runPlan(p);
  });
  await Promise.all(workers);
  // the summary in the components' and categories' order, whatever order they finished in
  const order = (r: TestResult) =>
    plans.findIndex((p) => p.component.name === r.component) * 10 + CATEGORIES.indexOf(r.category);
  results.sort((a, b) => order(a) - order(b));
  if (results.length) o.stdout(`\n${summaryTable(results)}`);
  if (o.junit) writeFileSync(o.junit, junitXml(results));
  const code = signal?.aborted ? 130 : results.every((r) => r.result === 'passed') ? 0 : 1;
  return { results, code };
}
