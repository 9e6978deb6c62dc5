/**
 * One component's infrastructure for one run (a "stack"): its compose file prepared for the run, `up`,
 * waiting until every service is healthy (and, for a service labelled `phare.service`, passing in the
 * agent), the environment the tests get, and `down -v`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { phareError } from '../api/index.ts';
import { loadPorts } from '../ports/index.ts';
import type { Component, InfraEnv, Monorepo } from './components.ts';
import {
  type ComposeFile,
  composeVariables,
  derivedEnv,
  endpoints,
  LABELS,
  prepareCompose,
  readComposeFile,
  type ServiceEndpoint,
  serviceActive,
  servicePorts,
} from './compose.ts';
import { type ContainerState, type Engine, logsTail, projectContainers } from './engine.ts';
import { runnerLabels } from './reaper.ts';
import { placeServices } from './split.ts';

/** Where a component's infrastructure comes from. */
export interface InfraSource {
  /** The compose file. */
  file: string;
  /** Services of that file that are the component's (all, for its own file). */
  services?: string[];
  /** Set when the file is the deprecated root one. */
  deprecated?: string;
}

/**
 * The compose file a component's `env` infrastructure comes from: its own, else its part of a root file
 * (deprecated, with the warning to print), else none (it runs on the host).
 *
 * @example
 * infraSource(repo, api, 'test'); // { file: '/repo/api/docker-compose.test.yaml' }
 */
export function infraSource(repo: Monorepo, comp: Component, env: InfraEnv): InfraSource | undefined {
  const own = comp.compose[env];
  if (own) return { file: own };
  const root = repo.rootCompose[env];
  if (!root) return undefined;
  const placed = placeServices(readComposeFile(root), repo.root, repo.components).byComponent.get(comp.name);
  if (!placed?.length) return undefined;
  return {
    file: root,
    services: placed,
    deprecated:
      `${comp.name}: using the root ${root.slice(repo.root.length + 1)} (services ${placed.join(', ')}): a root compose ` +
      `file is deprecated — run phare infra split to give each component its own ${env === 'test' ? 'docker-compose.test.yaml' : 'docker-compose.yaml'}`,
  };
}

/** A short random id for a run's project name. */
export const shortId = (): string => randomBytes(3).toString('hex');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Ports handed out by this process, so two stacks started at once never pick the same one. */
const reserved = new Set<number>();

/** Options of {@link startStack}. */
export interface StackOptions {
  engine: Engine;
  repo: Monorepo;
  component: Component;
  source: InfraSource;
  env: InfraEnv;
  /** Compose project name. @default `<component>-<short id>` for test, `<component>-dev` for development */
  project?: string;
  /** Profiles to activate (the categories that will run). @default ['integration', 'e2e'] */
  profiles?: string[];
  /** Environment Compose interpolates from. @default process.env */
  processEnv?: NodeJS.ProcessEnv;
  /** How long services may take to become healthy. @default component.waitTimeoutMs */
  timeoutMs?: number;
  /**
   * Label the run with this process, so the reaper removes it once the process is gone.
   * @default true
   */
  reapable?: boolean;
  /** Agent URL to wait on for services labelled `phare.service`; none: not waited on. */
  agent?: string;
  /** Aborts the start (Ctrl-C). */
  signal?: AbortSignal;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A started stack. */
export interface Stack {
  project: string;
  /** The compose file Phare wrote for the run. */
  file: string;
  services: string[];
  endpoints: ServiceEndpoint[];
  /** Environment for the component's commands. */
  env: Record<string, string>;
  /** `down` (with `-v` unless keepVolumes); never throws. Safe to call twice. */
  down(options?: { keepVolumes?: boolean }): Promise<void>;
}

function hostPortCandidate(
  repo: Monorepo,
  comp: Component,
  service: string,
  env: InfraEnv,
): number | undefined {
  if (!repo.portsFile) return undefined;
  const { model } = loadPorts(repo.portsFile);
  if (!model) return undefined;
  for (const owner of [`${comp.name}-${service}`, service]) {
    const a = model.allocations.find((x) => x.owner === owner && (x.env === env || x.env === null));
    if (a) return a.port;
  }
  return undefined;
}

/** Why a service is not ready yet, or has failed for good. */
function readiness(c: ContainerState): 'ready' | 'waiting' | 'failed' {
  if (c.health === 'healthy') return 'ready';
  if (c.health === 'unhealthy') return 'failed';
  if (c.health === 'starting') return c.status === 'running' ? 'waiting' : 'failed';
  if (c.status === 'running') return 'ready';
  // a one-shot container (migrations, seed data) that finished well
  if (c.status === 'exited' && c.exitCode === 0 && (c.restartPolicy === '' || c.restartPolicy === 'no'))
    return 'ready';
  if (c.status === 'created' || c.status === 'restarting') return 'waiting';
  return 'failed';
}

async function explain(
  engine: Engine,
  c: ContainerState | undefined,
  service: string,
  why: string,
): Promise<string> {
  if (!c) return `service "${service}": ${why}; no container was created`;
  const health =
    c.health !== undefined
      ? `health ${c.health} (${c.failingStreak} failed checks), last check output: ${c.lastHealthOutput ?? '(none yet)'}`
      : `state ${c.status}${c.status === 'exited' ? ` (exit ${c.exitCode})` : ''}, no healthcheck`;
  const logs = await logsTail(engine, c.id);
  return `service "${service}" (container ${c.name}): ${why}\n  ${health}\n  last log lines:\n${logs
    .split('\n')
    .map((l) => `    | ${l}`)
    .join('\n')}`;
}

async function waitHealthy(
  o: StackOptions,
  project: string,
  services: string[],
  registered: Map<string, string>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pause = 100;
  for (;;) {
    if (o.signal?.aborted) throw phareError('PHARE_ERR_INFRA_UNHEALTHY', 'interrupted');
    const containers = await projectContainers(o.engine, project);
    const failed: string[] = [];
    const waiting: string[] = [];
    for (const s of services) {
      const mine = containers.filter((c) => c.service === s);
      if (mine.length === 0) waiting.push(s);
      for (const c of mine) {
        const r = readiness(c);
        if (r === 'failed') failed.push(s);
        else if (r === 'waiting') waiting.push(s);
      }
    }
    if (failed.length) {
      const parts = await Promise.all(
        [...new Set(failed)].map((s) => {
          const c = containers.find((x) => x.service === s && readiness(x) === 'failed');
          return explain(
            o.engine,
            c,
            s,
            c?.health === 'unhealthy' ? 'reported unhealthy' : 'stopped before it was healthy',
          );
        }),
      );
      throw phareError(
        'PHARE_ERR_INFRA_UNHEALTHY',
        `${o.component.name}: infrastructure failed:\n${parts.join('\n')}`,
      );
    }
    if (waiting.length === 0 && o.agent && registered.size) {
      for (const [service, name] of registered) {
        const passing = await fetch(`${o.agent}/v1/health/service/${encodeURIComponent(name)}?passing`, {
          signal: AbortSignal.timeout(2000),
        })
          .then(async (r) => (r.ok ? ((await r.json()) as unknown[]).length > 0 : false))
          .catch(() => false);
        if (!passing) waiting.push(`${service} (phare.service ${name} not passing in ${o.agent})`);
      }
    }
    if (waiting.length === 0) return;
    if (Date.now() > deadline) {
      const parts = await Promise.all(
        [...new Set(waiting)].map((w) => {
          const s = w.split(' ')[0] as string;
          return explain(
            o.engine,
            containers.find((x) => x.service === s),
            w,
            `not healthy within ${Math.round(timeoutMs / 1000)} s`,
          );
        }),
      );
      throw phareError(
        'PHARE_ERR_INFRA_UNHEALTHY',
        `${o.component.name}: infrastructure failed:\n${parts.join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 1.5, 500);
  }
}

/**
 * Starts a component's infrastructure and waits until it is healthy; on any failure it is torn down
 * before the error is thrown.
 *
 * @example
 * const stack = await startStack({ engine, repo, component, source, env: 'test' });
 * try { runTests(stack.env); } finally { await stack.down(); }
 */
export async function startStack(o: StackOptions): Promise<Stack> {
  const comp = o.component;
  const project =
    o.project ??
    (o.env === 'test' ? `${comp.name}-${shortId()}` : `${comp.name}-dev`)
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, '-');
  const profiles = o.profiles ?? ['integration', 'e2e'];
  const processEnv = o.processEnv ?? process.env;
  const full = readComposeFile(o.source.file);
  // the component's part of a root file: its profiles were the root file's way of choosing, not its own
  const file: ComposeFile = o.source.services
    ? {
        ...full,
        services: Object.fromEntries(
          o.source.services.map((s) => {
            const { profiles: _, ...svc } = full.services[s] ?? {};
            return [s, svc];
          }),
        ),
      }
    : full;
  const projectDir = o.source.services ? o.repo.root : comp.dir;
  const vars = composeVariables(projectDir, processEnv);
  const source = o.source.file.slice(o.repo.root.length + 1) || o.source.file;

  const hostPorts = new Map<string, number>();
  const picked: number[] = [];
  const release = () => {
    for (const p of picked.splice(0)) reserved.delete(p);
  };
  /** Host ports for every published port; `freeOnly` after another process won a race for one. */
  const pickPorts = async (freeOnly: boolean) => {
    release();
    hostPorts.clear();
    for (const [name, svc] of Object.entries(file.services)) {
      if (!serviceActive(svc, profiles)) continue;
      for (const [i, p] of servicePorts(name, svc, vars).entries()) {
        let port: number | undefined =
          i === 0 && !freeOnly ? hostPortCandidate(o.repo, comp, name, o.env) : undefined;
        if (o.env === 'development') port ??= p.published;
        if (o.env === 'test' && port !== undefined && (reserved.has(port) || !(await portFree(port)))) {
          o.log?.(`${comp.name}: port ${port} of ${name} (ports.yaml) is in use; using a free port`);
          port = undefined;
        }
        if (port === undefined) {
          do port = await freePort();
          while (reserved.has(port));
        }
        reserved.add(port);
        picked.push(port);
        hostPorts.set(`${name}:${p.internal}`, port);
      }
    }
  };
  await pickPorts(false);
  const labels = { [LABELS.project]: project, ...(o.reapable === false ? {} : runnerLabels()) };
  let prepared: ComposeFile = file;
  const dir = join(tmpdir(), 'phare-infra');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${project}.yaml`);
  const writeFile = () => {
    try {
      prepared = prepareCompose(file, vars, {
        project,
        component: comp.name,
        env: o.env,
        profiles,
        hostPorts,
        labels,
        source,
      });
    } catch (err) {
      release();
      throw err;
    }
    writeFileSync(
      path,
      `# written by phare for ${comp.name} (${o.env}) from ${o.source.file}\n${stringify(prepared, { lineWidth: 0 })}`,
    );
  };
  writeFile();
  const base = ['-p', project, '-f', path, '--project-directory', projectDir];
  const services = Object.keys(prepared.services);
  const registered = new Map<string, string>();
  for (const [name, svc] of Object.entries(prepared.services)) {
    const l = svc['labels'] as Record<string, string>;
    if (l['phare.service']) registered.set(name, l['phare.service']);
  }
  if (registered.size && !o.agent)
    o.log?.(
      `${comp.name}: ${[...registered.values()].join(', ')} (phare.service) not waited on in an agent: pass --agent <url> or set PHARE_HTTP_ADDR`,
    );
  let downed: Promise<void> | undefined;
  const down = (d: { keepVolumes?: boolean } = {}) => {
    downed ??= (async () => {
      const r = await o.engine.compose(
        [
          ...base,
          'down',
          ...(d.keepVolumes ? [] : ['-v']),
          '--remove-orphans',
          '-t',
          o.env === 'test' ? '0' : '10',
        ],
        {
          env: processEnv,
        },
      );
      if (r.code !== 0)
        o.log?.(
          `${comp.name}: compose down failed (${r.stderr.trim().split('\n').at(-1)}); the reaper will remove ${project}`,
        );
      release();
      if (o.env === 'test') rmSync(path, { force: true });
    })();
    return downed;
  };
  try {
    const hasBuild = Object.values(prepared.services).some((s) => s['build']);
    o.log?.(`${comp.name}: starting ${services.join(', ')} (project ${project})`);
    const upNow = () =>
      o.engine.compose([...base, 'up', '-d', ...(hasBuild ? ['--build'] : [])], {
        env: processEnv,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    let up = await upNow();
    // another process (a concurrent run) took a port between our check and Docker's bind: free ports, again
    for (let attempt = 1; attempt < 4 && up.code !== 0 && o.env === 'test' && !o.signal?.aborted; attempt++) {
      if (!/port is already allocated|address already in use/i.test(up.stderr)) break;
      o.log?.(`${comp.name}: a host port was taken meanwhile; starting again on free ports`);
      await o.engine.compose([...base, 'down', '-v', '--remove-orphans', '-t', '0'], { env: processEnv });
      await pickPorts(true);
      writeFile();
      up = await upNow();
    }
    if (o.signal?.aborted) throw phareError('PHARE_ERR_INFRA_UNHEALTHY', 'interrupted');
    if (up.code !== 0) {
      // `up` refuses to go on when a depends_on: service_healthy dependency is unhealthy: say which and why
      const containers = await projectContainers(o.engine, project);
      const bad = containers.filter((c) => readiness(c) === 'failed');
      const parts = await Promise.all(
        bad.map((c) =>
          explain(o.engine, c, c.service, c.health === 'unhealthy' ? 'reported unhealthy' : 'stopped'),
        ),
      );
      throw phareError(
        'PHARE_ERR_INFRA_UNHEALTHY',
        `${comp.name}: compose up failed: ${up.stderr.trim().split('\n').slice(-5).join('\n')}${parts.length ? `\n${parts.join('\n')}` : ''}`,
      );
    }
    await waitHealthy(o, project, services, registered, o.timeoutMs ?? comp.waitTimeoutMs);
  } catch (err) {
    await down();
    throw err;
  }
  const env = { ...derivedEnv(prepared, vars), COMPOSE_PROJECT_NAME: project, PHARE_TEST_PROJECT: project };
  return { project, file: path, services, endpoints: endpoints(prepared, vars), env, down };
}
