/**
 * The components of a monorepo: from a root `phare.yaml` (`components:`, any language) or from npm
 * workspaces (`package.json` `workspaces`, scripts `test:unit` / `test:integration` / `test:e2e`, `test` as
 * unit), with the dependency graph `--affected` walks, and which compose files each one holds.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { parseDuration, phareError } from '../api/index.ts';
import { CATEGORIES, type Category, loadPhareFile, type PhareFile } from './schema.ts';

const execFileP = promisify(execFile);

/** The compose file names a component may hold, per environment. */
export const COMPOSE_FILES = {
  development: [
    'docker-compose.yaml',
    'docker-compose.yml',
    'compose.yaml',
    'compose.yml',
    'docker-compose.development.yaml',
    'docker-compose.development.yml',
  ],
  test: ['docker-compose.test.yaml', 'docker-compose.test.yml', 'compose.test.yaml', 'compose.test.yml'],
} as const;
/** An environment a compose file is for. */
export type InfraEnv = keyof typeof COMPOSE_FILES;

/** One component of the monorepo. */
export interface Component {
  name: string;
  /** Absolute folder. */
  dir: string;
  /** Folder relative to the root, `/`-separated. */
  path: string;
  /** Shell command per category it declares. */
  commands: Partial<Record<Category, string>>;
  /** Names of the components it depends on. */
  dependsOn: string[];
  /** Extra environment for its commands. */
  env: Record<string, string>;
  /** How long its services may take to become healthy. */
  waitTimeoutMs: number;
  /** Its compose file per environment, when it has one. */
  compose: Partial<Record<InfraEnv, string>>;
  /** The npm package name of a workspace. */
  packageName?: string;
}

/** A monorepo: its root, its components and the files found there. */
export interface Monorepo {
  root: string;
  components: Component[];
  /** `ports.yaml` when present. */
  portsFile?: string;
  /** Where the component list came from. */
  source: 'phare.yaml' | 'npm workspaces';
  /** A root compose file per environment (the layout before `phare infra split`). */
  rootCompose: Partial<Record<InfraEnv, string>>;
}

const DEFAULT_WAIT_MS = 120_000;

function composeIn(dir: string): Partial<Record<InfraEnv, string>> {
  const out: Partial<Record<InfraEnv, string>> = {};
  for (const env of Object.keys(COMPOSE_FILES) as InfraEnv[]) {
    const found = COMPOSE_FILES[env].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (found) out[env] = found;
  }
  return out;
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The folder holding `phare.yaml` or a `package.json` with workspaces, from `start` upwards. */
export function findRoot(start: string): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'phare.yaml'))) return dir;
    if (readJson(join(dir, 'package.json'))?.['workspaces']) return dir;
    const up = dirname(dir);
    if (up === dir)
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `no phare.yaml (components:) or package.json with workspaces in ${start} or above: ` +
          'run phare in the monorepo or pass --root <dir>',
      );
    dir = up;
  }
}

/** Expands npm workspace patterns (`packages/*`, `apps/api`) to folders holding a package.json. */
function workspaceDirs(root: string, patterns: string[]): string[] {
  const out: string[] = [];
  for (const pattern of patterns) {
    const parts = pattern.replace(/\/+$/, '').split('/');
    let dirs = [root];
    for (const part of parts) {
      const next: string[] = [];
      for (const d of dirs) {
        if (part === '*' || part === '**') {
          for (const e of readdirSync(d, { withFileTypes: true }))
            if (e.isDirectory() && e.name !== 'node_modules' && !e.name.startsWith('.'))
              next.push(join(d, e.name));
        } else if (part.includes('*')) {
          const re = new RegExp(`^${part.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
          for (const e of readdirSync(d, { withFileTypes: true }))
            if (e.isDirectory() && re.test(e.name)) next.push(join(d, e.name));
        } else if (existsSync(join(d, part))) next.push(join(d, part));
      }
      dirs = next;
    }
    for (const d of dirs) if (existsSync(join(d, 'package.json')) && !out.includes(d)) out.push(d);
  }
  return out;
}

function fromWorkspaces(root: string, patterns: string[]): Component[] {
  const dirs = workspaceDirs(root, patterns);
  const pkgs = dirs.map((dir) => ({ dir, pkg: readJson(join(dir, 'package.json')) ?? {} }));
  const names = new Map(pkgs.map(({ dir, pkg }) => [String(pkg['name'] ?? basename(dir)), basename(dir)]));
  return pkgs.map(({ dir, pkg }) => {
    const scripts = (pkg['scripts'] ?? {}) as Record<string, string>;
    const commands: Partial<Record<Category, string>> = {};
    for (const c of CATEGORIES) if (scripts[`test:${c}`]) commands[c] = `npm run --silent test:${c}`;
    if (!commands.unit && scripts['test']) commands.unit = 'npm run --silent test';
    const deps = new Set<string>();
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'])
      for (const dep of Object.keys((pkg[field] ?? {}) as Record<string, string>)) {
        const comp = names.get(dep);
        if (comp) deps.add(comp);
      }
    return {
      name: basename(dir),
      dir,
      path: relative(root, dir).split(sep).join('/'),
      commands,
      dependsOn: [...deps],
      env: {},
      waitTimeoutMs: DEFAULT_WAIT_MS,
      compose: composeIn(dir),
      ...(pkg['name'] ? { packageName: String(pkg['name']) } : {}),
    };
  });
}

function fromPhareFile(root: string, file: PhareFile): Component[] {
  const out: Component[] = [];
  (file.components ?? []).forEach((entry, i) => {
    const spec = entry;
    const dir = resolve(root, spec.path);
    const where = `phare.yaml: components[${i}].path`;
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw phareError('PHARE_ERR_INVALID_CONFIG', `${where}: ${JSON.stringify(spec.path)} is not a folder`);
    const name = ('name' in spec && spec.name) || basename(dir);
    if (out.some((c) => c.name === name))
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `phare.yaml: components[${i}]: a second component named "${name}"; give it a name: of its own`,
      );
    const test = ('test' in spec && spec.test) || {};
    const commands: Partial<Record<Category, string>> = {};
    for (const c of CATEGORIES) if (test[c]) commands[c] = test[c];
    out.push({
      name,
      dir,
      path: relative(root, dir).split(sep).join('/'),
      commands,
      dependsOn: ('depends_on' in spec && spec.depends_on) || [],
      env: ('env' in spec && spec.env) || {},
      waitTimeoutMs:
        'wait_timeout' in spec && spec.wait_timeout ? parseDuration(spec.wait_timeout) : DEFAULT_WAIT_MS,
      compose: composeIn(dir),
    });
  });
  for (const c of out)
    for (const d of c.dependsOn)
      if (!out.some((o) => o.name === d))
        throw phareError(
          'PHARE_ERR_INVALID_CONFIG',
          `phare.yaml: ${c.name}.depends_on: "${d}" is not a component (known: ${out.map((o) => o.name).join(', ')})`,
        );
  return out;
}

/**
 * Finds the monorepo at (or above) `start`: components from `phare.yaml`, else from npm workspaces.
 *
 * @example
 * const repo = loadMonorepo('/repo');
 * repo.components.map((c) => c.name); // ['api', 'bus', 'cache']
 */
export function loadMonorepo(start: string, options: { root?: string } = {}): Monorepo {
  const root = options.root ? resolve(options.root) : findRoot(start);
  const phareYaml = join(root, 'phare.yaml');
  const file = existsSync(phareYaml) ? loadPhareFile(phareYaml) : undefined;
  let components: Component[];
  let source: Monorepo['source'];
  if (file?.components) {
    components = fromPhareFile(root, file);
    source = 'phare.yaml';
  } else {
    const pkg = readJson(join(root, 'package.json'));
    const ws = pkg?.['workspaces'];
    const patterns = Array.isArray(ws) ? ws : (ws as { packages?: string[] } | undefined)?.packages;
    if (!patterns)
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${root}: no components: list in phare.yaml and no workspaces in package.json`,
      );
    components = fromWorkspaces(root, patterns.map(String));
    source = 'npm workspaces';
  }
  const ports = resolve(root, file?.ports ?? 'ports.yaml');
  return {
    root,
    components,
    source,
    rootCompose: composeIn(root),
    ...(existsSync(ports) ? { portsFile: ports } : {}),
  };
}

/**
 * The named components (by name or npm package name), or all when `names` is empty; an unknown name is an
 * error listing the known ones.
 *
 * @example
 * selectComponents(repo, ['api']);
 */
export function selectComponents(repo: Monorepo, names: string[]): Component[] {
  if (names.length === 0) return repo.components;
  return names.map((n) => {
    const c = repo.components.find((x) => x.name === n || x.packageName === n);
    if (!c)
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `component "${n}" is not in ${repo.source} (known: ${repo.components.map((x) => x.name).join(', ')})`,
      );
    return c;
  });
}

/** The components that depend on any of `names`, directly or through others, plus `names` themselves. */
export function withDependents(repo: Monorepo, names: Iterable<string>): Set<string> {
  const out = new Set(names);
  let grew = true;
  while (grew) {
    grew = false;
    for (const c of repo.components)
      if (!out.has(c.name) && c.dependsOn.some((d) => out.has(d))) {
        out.add(c.name);
        grew = true;
      }
  }
  return out;
}

/** What `--affected` found. */
export interface AffectedResult {
  /** Components holding a changed file. */
  changed: string[];
  /** Those plus their dependents, in the repository's order. */
  affected: string[];
  /** Changed files outside every component (they select nothing). */
  outside: string[];
  /** The commit compared against (merge base of `base` and HEAD). */
  mergeBase: string;
}

async function git(root: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP('git', args, { cwd: root, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `git ${args.join(' ')}: ${(e.stderr || e.message).trim()}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The components changed since `base` (committed since the merge base, staged, unstaged and untracked
 * files, as nx and turbo count them) and every component that depends on one of them.
 *
 * @example
 * const { affected } = await affectedComponents(repo, 'main');
 */
export async function affectedComponents(repo: Monorepo, base: string): Promise<AffectedResult> {
  const top = (await git(repo.root, ['rev-parse', '--show-toplevel'])).trim();
  let mergeBase: string;
  try {
    mergeBase = (await git(repo.root, ['merge-base', base, 'HEAD'])).trim();
  } catch (err) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--base: "${base}" is not a commit git knows here (${(err as Error).message}); pass --base <branch or commit>`,
      { cause: err },
    );
  }
  const lists = await Promise.all([
    git(repo.root, ['diff', '--name-only', '-z', mergeBase]),
    git(repo.root, ['ls-files', '--others', '--exclude-standard', '-z', '--full-name']),
  ]);
  const files = new Set(
    lists
      .join('\0')
      .split('\0')
      .filter(Boolean)
      .map((f) => resolve(top, f)),
  );
  const changed = new Set<string>();
  const outside: string[] = [];
  // the deepest component folder holding the file owns it (a component nested in another)
  const byDepth = [...repo.components].sort((a, b) => b.dir.length - a.dir.length);
  for (const f of files) {
    const owner = byDepth.find((c) => f === c.dir || f.startsWith(c.dir + sep));
    if (owner) changed.add(owner.name);
    else outside.push(relative(repo.root, f));
  }
  const all = withDependents(repo, changed);
  return {
    changed: repo.components.filter((c) => changed.has(c.name)).map((c) => c.name),
    affected: repo.components.filter((c) => all.has(c.name)).map((c) => c.name),
    outside: outside.sort(),
    mergeBase,
  };
}
