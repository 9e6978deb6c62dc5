/**
 * The reaper: what a killed runner left behind is found by its labels and removed. Every container,
 * network and volume of a run carries the runner's PID, its start time (a PID is reused; the pair is not)
 * and its host name; a run whose runner no longer lives on this host is removed — containers (with their
 * anonymous volumes), then networks, then volumes. testcontainers does the same with Ryuk, a container that
 * watches its client's connection; here the next `phare test` (or `phare infra reap`) does it, and nothing
 * runs while no test does.
 */
import { readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABELS } from './compose.ts';
import type { Engine } from './engine.ts';

/** The start time of a process (clock ticks since boot, Linux `/proc/<pid>/stat` field 22), if known. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that labelled a run still lives (same PID and same start time). */
export function runnerAlive(pid: number, start: string | undefined): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTime(pid);
  return !start || now === undefined || now === start;
}

/** The labels that tie a run to this process. */
export function runnerLabels(): Record<string, string> {
  return {
    [LABELS.pid]: String(process.pid),
    [LABELS.start]: processStartTime(process.pid) ?? '',
    [LABELS.host]: hostname(),
  };
}

/** What one reap removed. */
export interface ReapResult {
  projects: string[];
  containers: number;
  networks: number;
  volumes: number;
}

interface Owned {
  id: string;
  project: string;
  pid: number;
  start: string;
  host: string;
}

async function owned(engine: Engine, kind: 'container' | 'network' | 'volume'): Promise<Owned[]> {
  const fmt = `{{.ID}}\t{{.Label "${LABELS.project}"}}\t{{.Label "${LABELS.pid}"}}\t{{.Label "${LABELS.start}"}}\t{{.Label "${LABELS.host}"}}`;
  const args =
    kind === 'container'
      ? ['ps', '-a', '--no-trunc', '--filter', `label=${LABELS.pid}`, '--format', fmt]
      : [
          kind,
          'ls',
          '--filter',
          `label=${LABELS.pid}`,
          '--format',
          kind === 'volume' ? fmt.replace('{{.ID}}', '{{.Name}}') : fmt,
        ];
  const out = await engine.docker(args);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id = '', project = '', pid = '', start = '', host = ''] = line.split('\t');
      return { id, project, pid: Number(pid), start, host };
    });
}

/**
 * Removes every run whose runner is gone (or, with `projects`, exactly those runs, live or not).
 *
 * @example
 * const { projects } = await reap(engine);
 */
export async function reap(engine: Engine, options: { projects?: string[] } = {}): Promise<ReapResult> {
  const here = hostname();
  const dead = (o: Owned) =>
    options.projects ? options.projects.includes(o.project) : o.host === here && !runnerAlive(o.pid, o.start);
  const containers = (await owned(engine, 'container')).filter(dead);
  const projects = new Set(containers.map((c) => c.project));
  if (containers.length) await engine.raw(['rm', '-f', '-v', ...containers.map((c) => c.id)]);
  const networks = (await owned(engine, 'network')).filter(dead);
  for (const n of networks) projects.add(n.project);
  if (networks.length) await engine.raw(['network', 'rm', ...networks.map((n) => n.id)]);
  const volumes = (await owned(engine, 'volume')).filter(dead);
  for (const v of volumes) projects.add(v.project);
  if (volumes.length) await engine.raw(['volume', 'rm', '-f', ...volumes.map((v) => v.id)]);
  // the compose file the dead runner wrote for the run (stack.ts) goes too
  for (const p of projects)
    if (/^[a-z0-9_-]+$/.test(p)) rmSync(join(tmpdir(), 'phare-infra', `${p}.yaml`), { force: true });
  return {
    projects: [...projects].sort(),
    containers: containers.length,
    networks: networks.length,
    volumes: volumes.length,
  };
}
