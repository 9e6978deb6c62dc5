/**
 * Loads `ports.yaml` into a model: the validated file, every port allocation (owner × environment) and
 * every target resolved to one file location and value. Problems found while loading (bad YAML, schema,
 * unknown environments, bad placeholders) are returned as data with file, line, key, expected and found,
 * so `phare ports check` can print all of them at once.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { phareError } from '../api/index.ts';
import { type PortRange, type PortsFile, portsFileSchema, type TargetSpec } from './schema.ts';

/** The rule a problem breaks; stable, for `--json` consumers. */
export type ProblemRule =
  | 'yaml'
  | 'schema'
  | 'unknown-environment'
  | 'placeholder'
  | 'target-path'
  | 'range'
  | 'range-overlap'
  | 'out-of-range'
  | 'duplicate-port'
  | 'duplicate-target'
  | 'target'
  | 'out-of-sync'
  | 'agent';

/** One thing wrong with `ports.yaml`, a target file or the running agent. */
export interface PortsProblem {
  rule: ProblemRule;
  /** Errors fail `check` (exit 1); warnings are printed only. */
  severity: 'error' | 'warning';
  /** File the problem is in, relative to the directory of `ports.yaml`. */
  file: string;
  /** 1-based line, when known. */
  line?: number;
  column?: number;
  /** Key path in that file (`components.api.ports.production`) or the target's variable. */
  key: string;
  message: string;
  expected: string;
  found: string;
  /** What to do about it. */
  fix: string;
}

/** One host port given to an owner in one environment (or in all of them, `env: null`). */
export interface Allocation {
  owner: string;
  kind: 'component' | 'infrastructure';
  /** `null`: one port shared by every environment (infrastructure `port:`). */
  env: string | null;
  /** Host (published) port. */
  port: number;
  /** Port inside the container; equals `port` unless set. */
  internal: number;
  /** Where the port is written in `ports.yaml`. */
  key: string[];
}

/** A target resolved to one location in one file, with the value that belongs there. */
export interface ResolvedTarget {
  type: TargetSpec['type'];
  allocation: Allocation;
  /** Environment this copy of the target is for (`null` for a shared infrastructure port). */
  env: string | null;
  /** File relative to the directory of `ports.yaml` (placeholders expanded). */
  file: string;
  /** Absolute file path. */
  path: string;
  /** Key path (yaml, json). */
  key?: string[];
  /** Variable name (dotenv, compose-env). */
  var?: string;
  /** Compose service (compose-port, compose-env). */
  service?: string;
  /** Value to write: a number for a bare `{port}`/`{internal}` in YAML/JSON, else a string. */
  value: string | number;
  /** Where the target is declared in `ports.yaml`. */
  origin: string[];
  /** Human description of the location: `api/config.yaml server.port`. */
  where: string;
}

/** A loaded `ports.yaml`. */
export interface PortsModel {
  /** Absolute path of `ports.yaml`. */
  path: string;
  /** Directory of `ports.yaml`; target paths are relative to it. */
  root: string;
  /** File name used in problems. */
  name: string;
  source: string;
  config: PortsFile;
  allocations: Allocation[];
  targets: ResolvedTarget[];
  /** Line/column of a key path in `ports.yaml`. */
  locate(path: readonly (string | number)[]): { line: number; column: number } | undefined;
}

/** Result of {@link loadPorts}: the model when the file parsed and matched the schema, and every problem. */
export interface LoadResult {
  model: PortsModel | null;
  problems: PortsProblem[];
}

/**
 * Reads and validates `ports.yaml`. Throws PHARE_ERR_INVALID_CONFIG only when the file cannot be read;
 * everything else wrong is returned as problems.
 *
 * @example
 * const { model, problems } = loadPorts('ports.yaml');
 */
export function loadPorts(file: string): LoadResult {
  const path = resolve(file);
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      code === 'ENOENT'
        ? `ports file ${file} not found: run phare in the directory of ports.yaml or pass --file <path>`
        : `ports file ${file}: cannot read (${code ?? String(err)})`,
      { cause: err },
    );
  }
  return parsePorts(source, path);
}

/**
 * Validates `ports.yaml` text; `path` names the file in problems and anchors relative target paths.
 *
 * @example
 * const { model, problems } = parsePorts(text, '/repo/ports.yaml');
 */
export function parsePorts(source: string, path: string): LoadResult {
  const name = basename(path);
  const root = dirname(path);
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const problems: PortsProblem[] = [];
  const locate = (keys: readonly (string | number)[]) => {
    const offset = offsetOf(doc, keys);
    if (offset === undefined) return undefined;
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const at = (keys: readonly (string | number)[]) => ({ file: name, ...locate(keys), key: keyString(keys) });

  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0];
      problems.push({
        rule: 'yaml',
        severity: 'error',
        file: name,
        line: pos?.line,
        column: pos?.col,
        key: '',
        message: e.message.split('\n')[0] ?? e.message,
        expected: 'valid YAML',
        found: e.code,
        fix: 'fix the YAML syntax at this line',
      });
    }
    return { model: null, problems };
  }

  const parsed = portsFileSchema.safeParse(doc.toJS(), { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues)
      problems.push({ ...schemaProblem(issue), ...at(issuePath(issue)) });
    return { model: null, problems };
  }
  const config = parsed.data;
  const envNames = Object.keys(config.environments);
  const allocations: Allocation[] = [];
  const owners: { owner: string; kind: Allocation['kind']; base: string[]; targets: TargetSpec[] }[] = [];

  const unknownEnv = (keys: string[], env: string): PortsProblem => ({
    rule: 'unknown-environment',
    severity: 'error',
    ...at(keys),
    message: `environment "${env}" is not declared under environments`,
    expected: `one of ${envNames.join(', ')}`,
    found: env,
    fix: `add "${env}" under environments with its range, or fix the spelling`,
  });

  const addPorts = (
    owner: string,
    kind: Allocation['kind'],
    base: string[],
    ports: Record<string, number | { port: number; internal?: number | undefined }>,
    internal: number | undefined,
  ) => {
    for (const [env, value] of Object.entries(ports)) {
      const key = [...base, 'ports', env];
      if (!envNames.includes(env)) {
        problems.push(unknownEnv(key, env));
        continue;
      }
      const port = typeof value === 'number' ? value : value.port;
      const inner = (typeof value === 'number' ? undefined : value.internal) ?? internal ?? port;
      allocations.push({ owner, kind, env, port, internal: inner, key });
    }
  };

  for (const [owner, c] of Object.entries(config.components ?? {})) {
    const base = ['components', owner];
    addPorts(owner, 'component', base, c.ports, c.internal);
    owners.push({ owner, kind: 'component', base, targets: c.targets ?? [] });
  }
  for (const [owner, s] of Object.entries(config.infrastructure?.services ?? {})) {
    const base = ['infrastructure', 'services', owner];
    if ((s.port === undefined) === (s.ports === undefined)) {
      problems.push({
        rule: 'schema',
        severity: 'error',
        ...at(base),
        message: `infrastructure service "${owner}" needs exactly one of port (shared) or ports (per environment)`,
        expected: 'port: <number> or ports: { <env>: <number> }',
        found: s.port === undefined ? 'neither' : 'both',
        fix: 'keep one of the two keys',
      });
    }
    if (owners.some((o) => o.owner === owner)) {
      problems.push({
        rule: 'schema',
        severity: 'error',
        ...at(base),
        message: `"${owner}" is both a component and an infrastructure service`,
        expected: 'unique names',
        found: owner,
        fix: 'rename one of them',
      });
    }
    if (s.ports) addPorts(owner, 'infrastructure', base, s.ports, s.internal);
    else if (s.port !== undefined) {
      allocations.push({
        owner,
        kind: 'infrastructure',
        env: null,
        port: s.port,
        internal: s.internal ?? s.port,
        key: [...base, 'port'],
      });
    }
    owners.push({ owner, kind: 'infrastructure', base, targets: s.targets ?? [] });
  }

  const targets: ResolvedTarget[] = [];
  for (const { owner, base, targets: specs } of owners) {
    const mine = allocations.filter((a) => a.owner === owner);
    specs.forEach((spec, i) => {
      const origin = [...base, 'targets', String(i)];
      const copies: { alloc: Allocation; env: string | null }[] = [];
      if (spec.env !== undefined) {
        if (!envNames.includes(spec.env)) {
          problems.push(unknownEnv([...origin, 'env'], spec.env));
          return;
        }
        const alloc = mine.find((a) => a.env === spec.env || a.env === null);
        if (!alloc) {
          problems.push({
            rule: 'unknown-environment',
            severity: 'error',
            ...at([...origin, 'env']),
            message: `${owner} has no port for environment "${spec.env}"`,
            expected: `one of ${mine.map((a) => a.env).join(', ') || '(none)'}`,
            found: spec.env,
            fix: `add ${keyString([...base, 'ports', spec.env])}, or change the target's env`,
          });
          return;
        }
        copies.push({ alloc, env: spec.env });
      } else {
        for (const alloc of mine) {
          if (alloc.env === null && usesEnv(spec)) for (const env of envNames) copies.push({ alloc, env });
          else copies.push({ alloc, env: alloc.env });
        }
      }
      for (const { alloc, env } of copies) {
        const r = resolveTarget(spec, alloc, env, root, origin);
        if ('problem' in r) {
          problems.push({ ...r.problem, ...at(origin) });
          return;
        }
        targets.push(r.target);
      }
    });
  }

  return {
    model: { path, root, name, source, config, allocations, targets, locate: (k) => locate(k) },
    problems,
  };
}

/** The environment range an allocation must lie in (the infrastructure range for infrastructure). */
export function rangeOf(
  config: PortsFile,
  alloc: Allocation,
): { name: string; range: PortRange } | undefined {
  if (alloc.kind === 'infrastructure') {
    return config.infrastructure ? { name: 'infrastructure', range: config.infrastructure.range } : undefined;
  }
  const env = alloc.env === null ? undefined : config.environments[alloc.env];
  return env && alloc.env !== null ? { name: alloc.env, range: env.range } : undefined;
}

/** `components.api.ports.production`, with `[n]` for list indexes. */
export function keyString(keys: readonly (string | number)[]): string {
  let out = '';
  for (const k of keys) {
    if (typeof k === 'number' || /^\d+$/.test(k)) out += `[${k}]`;
    else out += out === '' ? k : `.${k}`;
  }
  return out;
}

/** Describes an allocation: `api (production)`. */
export function describeAllocation(a: Allocation): string {
  return `${a.owner} (${a.env ?? 'all environments'})`;
}

const PLACEHOLDER = /\{([a-z]+)\}/g;

function usesEnv(spec: TargetSpec): boolean {
  const texts: unknown[] = [spec.file, 'key' in spec ? spec.key : '', 'var' in spec ? spec.var : ''];
  return texts.flat().some((t) => typeof t === 'string' && t.includes('{env}'));
}

function resolveTarget(
  spec: TargetSpec,
  alloc: Allocation,
  env: string | null,
  root: string,
  origin: string[],
): { target: ResolvedTarget } | { problem: Omit<PortsProblem, 'file' | 'key' | 'line' | 'column'> } {
  const vars: Record<string, string | undefined> = {
    port: String(alloc.port),
    internal: String(alloc.internal),
    env: env ?? undefined,
    name: alloc.owner,
  };
  let bad: string | undefined;
  const fill = (text: string) =>
    text.replace(PLACEHOLDER, (whole, v: string) => {
      const value = vars[v];
      if (value === undefined) bad ??= whole;
      return value ?? whole;
    });
  const file = fill(spec.file);
  const path = resolve(root, file);
  const rel = relative(root, path);
  const key =
    'key' in spec
      ? (typeof spec.key === 'string' ? spec.key.split('.') : spec.key.map(String)).map(fill)
      : undefined;
  const variable = 'var' in spec ? fill(spec.var) : undefined;
  const template = 'value' in spec && spec.value !== undefined ? spec.value : '{port}';
  let value: string | number = fill(template);
  if (
    (spec.type === 'yaml' || spec.type === 'json') &&
    (template === '{port}' || template === '{internal}')
  ) {
    value = Number(value);
  }
  if (spec.type === 'compose-port') value = `${alloc.port}:${alloc.internal}`;
  if (bad !== undefined) {
    return {
      problem: {
        rule: 'placeholder',
        severity: 'error',
        message: `unknown placeholder ${bad}${bad === '{env}' ? ' (this port is shared by every environment)' : ''}`,
        expected: '{port}, {internal}, {env} or {name}',
        found: bad,
        fix:
          bad === '{env}' ? 'set env: on the target, or remove {env}' : 'use one of the known placeholders',
      },
    };
  }
  if (isAbsolute(spec.file) || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return {
      problem: {
        rule: 'target-path',
        severity: 'error',
        message: `target file ${file} is outside the directory of ports.yaml`,
        expected: 'a path relative to ports.yaml, inside its directory',
        found: file,
        fix: 'move ports.yaml up to the repository root, or fix the path',
      },
    };
  }
  const loc =
    spec.type === 'yaml' || spec.type === 'json'
      ? key!.join('.')
      : spec.type === 'dotenv'
        ? variable!
        : spec.type === 'compose-port'
          ? `services.${spec.service}.ports`
          : `services.${spec.service}.environment.${variable}`;
  return {
    target: {
      type: spec.type,
      allocation: alloc,
      env,
      file: rel.split(sep).join('/'),
      path,
      key,
      var: variable,
      service: 'service' in spec ? spec.service : undefined,
      value,
      origin,
      where: `${rel.split(sep).join('/')} ${loc}`,
    },
  };
}

function issuePath(issue: z.core.$ZodIssue): (string | number)[] {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return path;
}

function schemaProblem(issue: z.core.$ZodIssue): Omit<PortsProblem, 'file' | 'key' | 'line' | 'column'> {
  const input = (issue as { input?: unknown }).input;
  const found = input === undefined ? 'nothing' : shortJson(input);
  const base = { rule: 'schema' as const, severity: 'error' as const, message: issue.message };
  switch (issue.code) {
    case 'invalid_type':
      return {
        ...base,
        expected: issue.expected,
        found,
        fix: input === undefined ? 'add the missing key' : `change the value to a ${issue.expected}`,
      };
    case 'too_small':
      return { ...base, expected: `>= ${String(issue.minimum)}`, found, fix: 'raise the value' };
    case 'too_big':
      return { ...base, expected: `<= ${String(issue.maximum)}`, found, fix: 'lower the value' };
    case 'unrecognized_keys':
      return {
        ...base,
        expected: 'a known key',
        found: issue.keys.join(', '),
        fix: 'remove the key or fix its spelling (the JSON Schema in schema/ports.schema.json lists the keys)',
      };
    case 'invalid_value':
      return {
        ...base,
        expected: issue.values.map((v) => JSON.stringify(v)).join(' | '),
        found,
        fix: 'use one of the expected values',
      };
    case 'invalid_union': {
      // A target with an unknown `type` reports at targets[n].type (discriminator) or targets[n].
      const isType = issue.path.at(-1) === 'type' && issue.path.at(-3) === 'targets';
      const isTarget = isType || issue.path.at(-2) === 'targets';
      if (isType) {
        const type = (input as { type?: unknown } | undefined)?.type;
        return {
          ...base,
          message: 'unknown target type',
          expected: 'yaml | json | dotenv | compose-port | compose-env',
          found: type === undefined ? 'nothing' : shortJson(type),
          fix: 'set type: to one of the expected values',
        };
      }
      return {
        ...base,
        message: isTarget ? 'target has no valid type' : issue.message,
        expected: isTarget
          ? 'type: yaml | json | dotenv | compose-port | compose-env'
          : 'one of the allowed shapes',
        found,
        fix: isTarget ? 'set type: to one of the expected values' : 'see docs/ports.md for the shape',
      };
    }
    default:
      return { ...base, expected: issue.message, found, fix: 'see docs/ports.md' };
  }
}

function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Offset of the deepest node on `keys` (for a map entry: its key, the line a reader looks for). */
function offsetOf(doc: Document, keys: readonly (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  for (const k of keys) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(k));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(k)];
      if (item === undefined) break;
      offset = (item as Node).range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return offset;
}
