/**
 * A component's compose file, read and turned into the file Phare hands to Compose for one run:
 *
 * - published ports rewritten to the host ports chosen for this run (ports.yaml's environment, else free
 *   ports), bound to 127.0.0.1 in the test environment;
 * - every container, network and volume labelled with the run (`dev.phare.project`, the runner's PID and
 *   start time), so the reaper finds what a killed runner left behind;
 * - services outside the active profiles dropped, `profiles` removed (Compose v1.29 honours profiles, but
 *   the runner waits on exactly the services it starts);
 * - a fixed `container_name` refused in the test environment: two runs (or two components) would fight over
 *   the name (testcontainers-node #218 is the same complaint).
 *
 * It also derives what the tests need: `<SERVICE>_HOST`/`_PORT`/`_URL`, `DATABASE_URL` and the libpq `PG*`
 * variables for a PostgreSQL service, `REDIS_URL` for Redis, and `dev.phare.env.<NAME>` label templates.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { phareError } from '../api/index.ts';
import type { InfraEnv } from './components.ts';

/** A compose service as Phare reads it (everything else is passed through untouched). */
export type ComposeService = Record<string, unknown>;
/** A compose file as plain data. */
export interface ComposeFile {
  services: Record<string, ComposeService>;
  networks?: Record<string, Record<string, unknown> | null>;
  volumes?: Record<string, Record<string, unknown> | null>;
  [key: string]: unknown;
}

/** The label prefix of everything Phare adds. */
export const LABEL = 'dev.phare';
/** Labels that tie a resource to one run. */
export const LABELS = {
  project: `${LABEL}.project`,
  component: `${LABEL}.component`,
  pid: `${LABEL}.runner.pid`,
  start: `${LABEL}.runner.start`,
  host: `${LABEL}.runner.host`,
} as const;

/**
 * Reads a compose file (YAML) into data; a bad file is PHARE_ERR_INVALID_CONFIG naming it.
 *
 * @example
 * const file = readComposeFile('api/docker-compose.test.yaml');
 */
export function readComposeFile(path: string): ComposeFile {
  const doc = parseDocument(readFileSync(path, 'utf8'), { merge: true });
  if (doc.errors.length > 0)
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${path}: not valid YAML: ${doc.errors[0]?.message.split('\n')[0]}`,
    );
  if (!isMap(doc.contents))
    throw phareError('PHARE_ERR_INVALID_CONFIG', `${path}: expected a mapping with services:`);
  const data = doc.toJS({ maxAliasCount: -1 }) as ComposeFile;
  if (!data.services || typeof data.services !== 'object')
    throw phareError('PHARE_ERR_INVALID_CONFIG', `${path}: services: expected a mapping of services`);
  for (const [name, svc] of Object.entries(data.services))
    if (!svc || typeof svc !== 'object')
      throw phareError('PHARE_ERR_INVALID_CONFIG', `${path}: services.${name}: expected a mapping`);
  return data;
}

/** The variables Compose interpolates: the `.env` of the project folder under the process environment. */
export function composeVariables(dir: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  const dotenv = join(dir, '.env');
  if (existsSync(dotenv))
    for (const line of readFileSync(dotenv, 'utf8').split('\n')) {
      const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
      if (m?.[1]) out[m[1]] = (m[2] ?? '').replace(/^(['"])(.*)\1$/, '$2');
    }
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Compose's variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$$`), for the
 * values Phare must read itself (ports, images, credentials).
 *
 * @example
 * interpolate('${PGPORT:-5433}:5432', {}); // '5433:5432'
 */
export function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (all, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (all === '$$') return '$';
      const name = (braced ?? bare) as string;
      const value = vars[name];
      if (op === ':-') return value ? value : (arg ?? '');
      if (op === '-') return value ?? arg ?? '';
      return value ?? '';
    },
  );
}

/** One published port of a service. */
export interface PortMapping {
  /** Port inside the container. */
  internal: number;
  /** Host port the file asks for (undefined: any). */
  published?: number;
  hostIp?: string;
  protocol: string;
}

/**
 * A service's `ports:` entries (short `[ip:][host:]container[/proto]` or long syntax), variables
 * interpolated; a range or a bad entry is an error naming the service.
 *
 * @example
 * servicePorts('db', { ports: ['5433:5432'] }, {}); // [{ internal: 5432, published: 5433, protocol: 'tcp' }]
 */
export function servicePorts(name: string, svc: ComposeService, vars: Record<string, string>): PortMapping[] {
  const raw = svc['ports'];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw))
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `services.${name}.ports: expected a list, got ${JSON.stringify(raw)}`,
    );
  return raw.map((entry, i) => {
    const where = `services.${name}.ports[${i}]`;
    if (entry && typeof entry === 'object') {
      const e = entry as Record<string, unknown>;
      const internal = Number(interpolate(String(e['target'] ?? ''), vars));
      const published =
        e['published'] === undefined ? undefined : Number(interpolate(String(e['published']), vars));
      if (!Number.isInteger(internal) || internal < 1)
        throw phareError('PHARE_ERR_INVALID_CONFIG', `${where}.target: expected a port number`);
      return {
        internal,
        ...(published ? { published } : {}),
        ...(e['host_ip'] ? { hostIp: String(e['host_ip']) } : {}),
        protocol: String(e['protocol'] ?? 'tcp'),
      };
    }
    const text = interpolate(String(entry), vars);
    const m = /^(?:(?:\[([^\]]+)\]|(\d+\.\d+\.\d+\.\d+)):)?(?:(\d*):)?(\d+)(?:\/(tcp|udp|sctp))?$/.exec(text);
    if (!m)
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${where}: ${JSON.stringify(entry)} is not [host_ip:][host_port:]container_port[/protocol] (port ranges are not supported)`,
      );
    const hostIp = m[1] ?? m[2];
    return {
      internal: Number(m[4]),
      ...(m[3] ? { published: Number(m[3]) } : {}),
      ...(hostIp ? { hostIp } : {}),
      protocol: m[5] ?? 'tcp',
    };
  });
}

function asMap(value: unknown, what: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const item of value) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq < 0) out[s] = '';
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  if (typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null ? '' : String(v)]));
  throw phareError('PHARE_ERR_INVALID_CONFIG', `${what}: expected a mapping or a list of KEY=VALUE`);
}

/** A service whose `profiles` (if any) include one of `active`. */
export function serviceActive(svc: ComposeService, active: readonly string[]): boolean {
  const p = svc['profiles'];
  return !Array.isArray(p) || p.length === 0 || p.some((x) => active.includes(String(x)));
}

/** What a run needs to write its compose file. */
export interface PrepareOptions {
  /** Compose project name of the run. */
  project: string;
  component: string;
  env: InfraEnv;
  /** Profiles to activate (the categories that run). */
  profiles: readonly string[];
  /** Host port per `service:internal`, chosen by the caller. */
  hostPorts: Map<string, number>;
  /** Labels for every container, network and volume. */
  labels: Record<string, string>;
  /** File name used in errors. */
  source: string;
}

/** The services whose `container_name` is fixed (refused for test runs). */
export function fixedContainerNames(file: ComposeFile, profiles: readonly string[]): string[] {
  return Object.entries(file.services)
    .filter(([, s]) => serviceActive(s, profiles) && s['container_name'] !== undefined)
    .map(([n, s]) => `${n} (container_name: ${String(s['container_name'])})`);
}

/**
 * The file Compose runs: active services only, ports rewritten, everything labelled.
 *
 * @example
 * const out = prepareCompose(file, vars, { project: 'api-1a2b3c', component: 'api', env: 'test', … });
 */
export function prepareCompose(
  file: ComposeFile,
  vars: Record<string, string>,
  o: PrepareOptions,
): ComposeFile {
  if (o.env === 'test') {
    const fixed = fixedContainerNames(file, o.profiles);
    if (fixed.length)
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${o.source}: ${fixed.join(', ')}: a fixed container_name makes every run use the same container, so two ` +
          'runs (or two components) collide and a parallel run fails with "Conflict. The container name is already ' +
          'in use"; remove container_name — phare test names containers by its own project (<component>-<run id>)',
      );
  }
  const services: Record<string, ComposeService> = {};
  for (const [name, svc] of Object.entries(file.services)) {
    if (!serviceActive(svc, o.profiles)) continue;
    const out: ComposeService = { ...svc };
    delete out['profiles'];
    const ports = servicePorts(name, svc, vars);
    if (ports.length)
      out['ports'] = ports.map((p) => {
        const host = o.hostPorts.get(`${name}:${p.internal}`) ?? p.published;
        const ip = p.hostIp ?? (o.env === 'test' ? '127.0.0.1' : undefined);
        return `${ip ? `${ip}:` : ''}${host ? `${host}:` : ''}${p.internal}/${p.protocol}`;
      });
    out['labels'] = {
      ...asMap(svc['labels'], `services.${name}.labels`),
      ...o.labels,
      [LABELS.component]: o.component,
    };
    // depends_on may name a service outside the active profiles: Compose would refuse the file
    const deps = svc['depends_on'];
    if (Array.isArray(deps))
      out['depends_on'] = deps.filter(
        (d) =>
          file.services[String(d)] && serviceActive(file.services[String(d)] as ComposeService, o.profiles),
      );
    else if (deps && typeof deps === 'object')
      out['depends_on'] = Object.fromEntries(
        Object.entries(deps).filter(
          ([d]) => file.services[d] && serviceActive(file.services[d] as ComposeService, o.profiles),
        ),
      );
    services[name] = out;
  }
  const labelled = (
    defs: Record<string, Record<string, unknown> | null> | undefined,
    withDefault: boolean,
  ) => {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [n, def] of Object.entries(defs ?? {})) {
      const d = def ?? {};
      out[n] = d['external'] ? d : { ...d, labels: { ...asMap(d['labels'], n), ...o.labels } };
    }
    if (withDefault && !out['default']) out['default'] = { labels: { ...o.labels } };
    return out;
  };
  const result: ComposeFile = { ...file, services, networks: labelled(file.networks, true) };
  delete result['name']; // the project name is the run's (-p)
  if (file.volumes) result.volumes = labelled(file.volumes, false);
  return result;
}

/** What a published service is, for its URL. */
type Kind = 'postgres' | 'redis' | 'http';

function kindOf(svc: ComposeService, vars: Record<string, string>): Kind {
  const image = interpolate(String(svc['image'] ?? ''), vars).toLowerCase();
  const env = asMap(svc['environment'], 'environment');
  if (/postgres|postgis|timescale/.test(image) || 'POSTGRES_PASSWORD' in env || 'POSTGRES_USER' in env)
    return 'postgres';
  if (/redis|valkey|keydb/.test(image)) return 'redis';
  return 'http';
}

/** A running service, as the tests and `phare infra up` see it from the host. */
export interface ServiceEndpoint {
  service: string;
  kind: Kind;
  host: string;
  /** Host port per container port. */
  ports: { internal: number; host: number }[];
  /** URL or connection string of the first port. */
  url?: string;
}

const envName = (service: string) => service.toUpperCase().replace(/[^A-Z0-9]+/g, '_');

/**
 * Endpoints of the published services of a prepared file.
 *
 * @example
 * endpoints(prepared, vars); // [{ service: 'postgres', url: 'postgresql://app:pw@127.0.0.1:7432/app', … }]
 */
export function endpoints(prepared: ComposeFile, vars: Record<string, string>): ServiceEndpoint[] {
  const out: ServiceEndpoint[] = [];
  for (const [service, svc] of Object.entries(prepared.services)) {
    const mapped = servicePorts(service, svc, vars).filter((p) => p.published !== undefined);
    if (mapped.length === 0) continue;
    const host = !mapped[0]?.hostIp || mapped[0].hostIp === '0.0.0.0' ? '127.0.0.1' : mapped[0].hostIp;
    const ports = mapped.map((p) => ({ internal: p.internal, host: p.published as number }));
    const kind = kindOf(svc, vars);
    const env = Object.fromEntries(
      Object.entries(asMap(svc['environment'], 'environment')).map(([k, v]) => [k, interpolate(v, vars)]),
    );
    const port = ports[0]?.host;
    let url: string | undefined;
    if (kind === 'postgres') {
      const user = env['POSTGRES_USER'] || 'postgres';
      const pw = env['POSTGRES_PASSWORD'];
      url = `postgresql://${encodeURIComponent(user)}${pw ? `:${encodeURIComponent(pw)}` : ''}@${host}:${port}/${encodeURIComponent(env['POSTGRES_DB'] || user)}`;
    } else if (kind === 'redis') url = `redis://${host}:${port}`;
    else url = `http://${host}:${port}`;
    out.push({ service, kind, host, ports, url });
  }
  return out;
}

/**
 * The environment a component's tests get from its running services.
 *
 * @example
 * derivedEnv(prepared, vars).DATABASE_URL; // 'postgresql://app:pw@127.0.0.1:7432/app'
 */
export function derivedEnv(prepared: ComposeFile, vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const eps = endpoints(prepared, vars);
  for (const ep of eps) {
    const n = envName(ep.service);
    out[`${n}_HOST`] = ep.host;
    out[`${n}_PORT`] = String(ep.ports[0]?.host);
    for (const p of ep.ports) out[`${n}_PORT_${p.internal}`] = String(p.host);
    if (ep.url) out[`${n}_URL`] = ep.url;
  }
  const pg = eps.find((e) => e.kind === 'postgres');
  if (pg?.url) {
    const u = new URL(pg.url);
    Object.assign(out, {
      DATABASE_URL: pg.url,
      PGHOST: pg.host,
      PGPORT: u.port,
      PGUSER: decodeURIComponent(u.username),
      PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
      ...(u.password ? { PGPASSWORD: decodeURIComponent(u.password) } : {}),
    });
  }
  const redis = eps.find((e) => e.kind === 'redis');
  if (redis?.url) out['REDIS_URL'] = redis.url;
  // dev.phare.env.NAME: "postgresql://u:p@{host}:{port:5432}/db" — the component's own variables
  for (const ep of eps) {
    const labels = asMap(prepared.services[ep.service]?.['labels'], 'labels');
    for (const [k, v] of Object.entries(labels)) {
      if (!k.startsWith(`${LABEL}.env.`)) continue;
      out[k.slice(`${LABEL}.env.`.length)] = v
        .replaceAll('{host}', ep.host)
        .replaceAll('{port}', String(ep.ports[0]?.host))
        .replace(/\{port:(\d+)\}/g, (_, n: string) =>
          String(ep.ports.find((p) => p.internal === Number(n))?.host ?? ''),
        );
    }
  }
  return out;
}

/** The folder a compose file's relative paths are resolved from. */
export const projectDirOf = (file: string): string => dirname(file);
