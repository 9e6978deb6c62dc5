/**
 * `phare infra split`: from one root compose file (services in `profiles`, each component's service built
 * from its folder) to one compose file per component. A service is placed by what it builds: its
 * `build.context`, or — for the common root context `.` — its `build.dockerfile` path
 * (`dockerfile: pourtier/Dockerfile` belongs to pourtier). A service that builds nothing (postgres:16) goes
 * with every component whose services depend on it; one nobody depends on is reported, never guessed.
 * The same placement serves `phare test`'s fallback to a root file that still exists.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { stringify } from 'yaml';
import { phareError } from '../api/index.ts';
import type { Component } from './components.ts';
import type { ComposeFile, ComposeService } from './compose.ts';

const inside = (dir: string, path: string) => path === dir || path.startsWith(dir + sep);

function dependsOn(svc: ComposeService): string[] {
  const d = svc['depends_on'];
  if (Array.isArray(d)) return d.map(String);
  if (d && typeof d === 'object') return Object.keys(d);
  return [];
}

function buildOf(svc: ComposeService): { context: string; dockerfile?: string } | undefined {
  const b = svc['build'];
  if (typeof b === 'string') return { context: b };
  if (b && typeof b === 'object') {
    const o = b as Record<string, unknown>;
    return {
      context: String(o['context'] ?? '.'),
      ...(o['dockerfile'] ? { dockerfile: String(o['dockerfile']) } : {}),
    };
  }
  return undefined;
}

/** Where each service of a root file goes. */
export interface Placement {
  /** Service names per component. */
  byComponent: Map<string, string[]>;
  /** Services no component could take, with the reason. */
  unplaced: { service: string; reason: string }[];
  /** Why each service went where it went. */
  why: Map<string, string>;
}

/**
 * Places the services of a root compose file (`rootDir` is its folder) with the components.
 *
 * @example
 * placeServices(rootFile, '/repo', components).byComponent.get('pourtier'); // ['postgres-test', 'pourtier-test']
 */
export function placeServices(file: ComposeFile, rootDir: string, components: Component[]): Placement {
  const byComponent = new Map<string, string[]>();
  const why = new Map<string, string>();
  const unplaced: Placement['unplaced'] = [];
  const owner = new Map<string, string>();
  const deepest = [...components].sort((a, b) => b.dir.length - a.dir.length);
  const ownerOf = (path: string) => deepest.find((c) => inside(c.dir, path))?.name;
  for (const [name, svc] of Object.entries(file.services)) {
    const build = buildOf(svc);
    if (!build) continue;
    const context = resolve(rootDir, build.context);
    let comp = ownerOf(context);
    let reason = `build.context ${build.context}`;
    if (!comp && build.dockerfile) {
      comp = ownerOf(resolve(context, build.dockerfile));
      reason = `build.dockerfile ${build.dockerfile}`;
    }
    if (comp) {
      owner.set(name, comp);
      why.set(name, reason);
    } else
      unplaced.push({
        service: name,
        reason: `builds ${build.context}${build.dockerfile ? ` (${build.dockerfile})` : ''}, which is in no component`,
      });
  }
  const add = (comp: string, service: string) => {
    const list = byComponent.get(comp) ?? [];
    if (!list.includes(service)) list.push(service);
    byComponent.set(comp, list);
  };
  // each built service with everything it depends on, transitively
  for (const [service, comp] of owner) {
    const stack = [service];
    while (stack.length) {
      const s = stack.pop() as string;
      if (byComponent.get(comp)?.includes(s)) continue;
      if (!file.services[s]) continue;
      const other = owner.get(s);
      if (other && other !== comp) continue; // another component's own service: not copied
      add(comp, s);
      if (s !== service && !why.has(s)) why.set(s, `a dependency of ${service}`);
      stack.push(...dependsOn(file.services[s] as ComposeService));
    }
  }
  for (const name of Object.keys(file.services)) {
    if (owner.has(name) || unplaced.some((u) => u.service === name)) continue;
    const users = [...byComponent].filter(([, list]) => list.includes(name)).map(([c]) => c);
    if (users.length === 0)
      unplaced.push({ service: name, reason: 'builds nothing and no component service depends on it' });
    else if (users.length > 1) why.set(name, `a dependency of ${users.join(' and ')} (copied to each)`);
  }
  // keep the root file's service order
  const order = Object.keys(file.services);
  for (const [c, list] of byComponent)
    byComponent.set(
      c,
      list.sort((a, b) => order.indexOf(a) - order.indexOf(b)),
    );
  return { byComponent, unplaced, why };
}

function rebase(path: string, from: string, to: string): string {
  if (isAbsolute(path) || !/^\.{1,2}(\/|$)/.test(path)) return path;
  const r = relative(to, resolve(from, path)) || '.';
  return r.startsWith('.') ? r : `./${r}`;
}

/**
 * The part of a root file that belongs to one component, its relative paths rebased to `toDir`; with
 * `forTest`, `container_name` and `profiles` removed. Notes say what was changed.
 *
 * @example
 * const { file, notes } = componentFile(root, '/repo', '/repo/pourtier', ['postgres-test', 'pourtier-test']);
 */
export function componentFile(
  root: ComposeFile,
  rootDir: string,
  toDir: string,
  services: string[],
): { file: ComposeFile; notes: string[]; profiles: Set<string> } {
  const notes: string[] = [];
  const profiles = new Set<string>();
  const out: Record<string, ComposeService> = {};
  const networks = new Set<string>();
  const volumes = new Set<string>();
  for (const name of services) {
    const svc: ComposeService = structuredClone(root.services[name] as ComposeService);
    if (Array.isArray(svc['profiles'])) for (const p of svc['profiles']) profiles.add(String(p));
    delete svc['profiles'];
    if (svc['container_name'] !== undefined) {
      notes.push(
        `${name}: removed container_name ${String(svc['container_name'])} (a fixed name collides between runs)`,
      );
      delete svc['container_name'];
    }
    const build = svc['build'];
    if (typeof build === 'string') svc['build'] = rebase(build, rootDir, toDir);
    else if (build && typeof build === 'object') {
      const b = build as Record<string, unknown>;
      const ctx = rebase(String(b['context'] ?? '.'), rootDir, toDir);
      b['context'] = ctx;
      if (ctx.startsWith('..'))
        notes.push(
          `${name}: build context stays the repository root (${ctx}); build the component alone once its ` +
            `Dockerfile copies paths relative to its own folder`,
        );
    }
    for (const key of ['env_file']) {
      const v = svc[key];
      if (typeof v === 'string') svc[key] = rebase(v, rootDir, toDir);
      else if (Array.isArray(v))
        svc[key] = v.map((x) => (typeof x === 'string' ? rebase(x, rootDir, toDir) : x));
    }
    if (Array.isArray(svc['volumes']))
      svc['volumes'] = svc['volumes'].map((v) => {
        if (typeof v !== 'string') {
          const o = v as Record<string, unknown>;
          if (o['type'] === 'bind' && typeof o['source'] === 'string')
            o['source'] = rebase(o['source'], rootDir, toDir);
          else if (o['type'] === 'volume' && typeof o['source'] === 'string') volumes.add(o['source']);
          return o;
        }
        const [src, ...rest] = v.split(':');
        if (src && /^\.{1,2}(\/|$)/.test(src)) return [rebase(src, rootDir, toDir), ...rest].join(':');
        if (src && rest.length && !src.startsWith('/')) volumes.add(src);
        return v;
      });
    const n = svc['networks'];
    for (const net of Array.isArray(n) ? n : n && typeof n === 'object' ? Object.keys(n) : [])
      networks.add(String(net));
    out[name] = svc;
  }
  const file: ComposeFile = { services: out };
  const pick = (defs: ComposeFile['networks'], used: Set<string>) =>
    Object.fromEntries(Object.entries(defs ?? {}).filter(([k]) => used.has(k)));
  if (networks.size && root.networks) file.networks = pick(root.networks, networks);
  if (volumes.size && root.volumes) file.volumes = pick(root.volumes, volumes);
  for (const [k, def] of Object.entries(file.networks ?? {}))
    if (def && typeof def === 'object' && def['name'])
      notes.push(`network ${k}: fixed name ${String(def['name'])} kept; two components' runs would share it`);
  return { file, notes, profiles };
}

/** What `phare infra split` did (or, with dryRun, would do). */
export interface SplitReport {
  written: { component: string; path: string; services: string[] }[];
  skipped: { component: string; path: string; reason: string }[];
  unplaced: { service: string; reason: string }[];
  notes: string[];
  /** The YAML of each written file, by path. */
  contents: Map<string, string>;
}

/**
 * Splits a root compose file into each component's own file (`docker-compose.test.yaml` for a test file,
 * `docker-compose.yaml` otherwise).
 *
 * @example
 * const report = splitCompose(rootFile, '/repo/docker-compose.test.yaml', components, { env: 'test' });
 */
export function splitCompose(
  root: ComposeFile,
  rootPath: string,
  components: Component[],
  options: { env: 'test' | 'development'; dryRun?: boolean; force?: boolean },
): SplitReport {
  const rootDir = dirname(rootPath);
  const placement = placeServices(root, rootDir, components);
  const report: SplitReport = {
    written: [],
    skipped: [],
    unplaced: placement.unplaced,
    notes: [],
    contents: new Map(),
  };
  const target = options.env === 'test' ? 'docker-compose.test.yaml' : 'docker-compose.yaml';
  for (const comp of components) {
    const services = placement.byComponent.get(comp.name);
    if (!services?.length) continue;
    const path = join(comp.dir, target);
    if (existsSync(path) && !options.force) {
      report.skipped.push({ component: comp.name, path, reason: 'exists (pass --force to overwrite)' });
      continue;
    }
    const { file, notes, profiles } = componentFile(root, rootDir, comp.dir, services);
    for (const s of services) report.notes.push(`${comp.name}: ${s} (${placement.why.get(s) ?? 'placed'})`);
    report.notes.push(...notes.map((n) => `${comp.name}: ${n}`));
    if (profiles.size)
      report.notes.push(
        `${comp.name}: profiles ${[...profiles].join(', ')} dropped (the file is the component's)`,
      );
    const builtOnly = services.every((s) => root.services[s]?.['build']);
    if (builtOnly)
      report.notes.push(
        `${comp.name}: its file only builds the component itself (no other service): if its tests need nothing ` +
          `else, delete ${relative(rootDir, path)} and they run on the host`,
      );
    const header = `# ${comp.name}'s ${options.env} infrastructure, split from ${relative(comp.dir, rootPath)} by phare infra split\n`;
    const text = header + stringify(file, { lineWidth: 0 });
    report.contents.set(path, text);
    report.written.push({ component: comp.name, path, services });
    if (!options.dryRun) {
      try {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(`${path}.tmp`, text);
        renameSync(`${path}.tmp`, path);
      } catch (err) {
        throw phareError('PHARE_ERR_FILE_WRITE', `${path}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return report;
}
