/**
 * What a container asks to be registered as, read from its labels and environment. Two spellings:
 *
 * - Phare's labels: `phare.service`, `phare.port`, `phare.tags` (comma list), `phare.meta.<key>`,
 *   `phare.network` (which network's address to register), `phare.check.http` (a path the agent probes),
 *   `phare.check.interval` (Consul duration, default 10s).
 * - gliderlabs/registrator's variables, as env or labels (docs/user/services.md): `SERVICE_NAME`,
 *   `SERVICE_TAGS`, `SERVICE_<port>_NAME`, `SERVICE_<port>_TAGS`, `SERVICE_IGNORE`, `SERVICE_<port>_IGNORE`.
 *   As in registrator, `SERVICE_NAME` on a container exposing several ports names `<name>-<port>`.
 *
 * Only containers that opt in are registered (registrator registers everything by default, then users
 * add SERVICE_IGNORE everywhere). The address is the container's IP on its network: the host-published
 * ports of registrator's default are useless to other containers and wrong on overlay networks (#291).
 */
import { type CheckStatus, parseDuration } from '../../api/index.ts';
import type { CheckInput, ServiceInput } from '../catalog/index.ts';
import type { ContainerInspect } from './engine.ts';

/** Meta key holding the container ID: marks the agent services the watcher owns. */
export const CONTAINER_META = 'phare-docker-container';
/** Meta key holding the container name (without the leading `/`). */
export const CONTAINER_NAME_META = 'phare-docker-name';

/** One service a container asks for, with its checks and the Docker health status they carry. */
export interface ContainerRegistration {
  service: ServiceInput;
  checks: CheckInput[];
  /** Status and output to hold on the Docker-health check (absent without a HEALTHCHECK). */
  health?: { checkId: string; status: CheckStatus; output: string };
}

/** The result of reading a container: what to register, and what was wrong (logged, never thrown). */
export interface ContainerReading {
  registrations: ContainerRegistration[];
  problems: string[];
}

const DEFAULT_CHECK_INTERVAL_MS = 10_000;

function envMap(env: readonly string[] | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) out.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return out;
}

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Docker's health words -> Consul statuses; `starting` is critical until the first passing probe. */
function healthOf(c: ContainerInspect): { status: CheckStatus; output: string } | undefined {
  const test = c.Config.Healthcheck?.Test;
  const h = c.State.Health;
  if (!h || (test && test[0] === 'NONE')) return undefined;
  const last = h.Log?.at(-1)?.Output?.trim() ?? '';
  const status: CheckStatus = h.Status === 'healthy' ? 'passing' : 'critical';
  const output = h.Status === 'starting' ? `starting${last ? `: ${last}` : ''}` : last || h.Status;
  return { status, output: output.slice(0, 4096) };
}

/**
 * Reads the registrations a running container asks for.
 *
 * @example
 * const { registrations, problems } = readContainer(await engine.inspect(id));
 */
export function readContainer(c: ContainerInspect): ContainerReading {
  const problems: string[] = [];
  const labels = c.Config.Labels ?? {};
  const env = envMap(c.Config.Env);
  // registrator reads SERVICE_* from both; a label wins over the image's or run's env
  const svcVar = (k: string) => labels[k] ?? env.get(k);
  const name = c.Name.replace(/^\//, '');
  const short = c.Id.slice(0, 12);
  const exposed = Object.keys(c.Config.ExposedPorts ?? {})
    .map((k) => {
      const [p, proto] = k.split('/');
      return { port: Number(p), proto: proto ?? 'tcp' };
    })
    .filter((p) => Number.isInteger(p.port) && p.port > 0)
    .sort((a, b) => a.port - b.port);

  const networks = Object.entries(c.NetworkSettings.Networks ?? {})
    .filter(([, n]) => n.IPAddress)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const wanted = labels['phare.network'];
  const net = wanted ? networks.find(([n]) => n === wanted) : networks[0];
  const address = net?.[1].IPAddress ?? '';

  const asked: { name: string; port: number; tags: string[]; meta: Record<string, string> }[] = [];
  const phareName = labels['phare.service'];
  if (phareName !== undefined) {
    let port = 0;
    const portLabel = labels['phare.port'];
    if (portLabel !== undefined) {
      port = Number(portLabel);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        problems.push(`label phare.port: expected a port number 1-65535, got ${JSON.stringify(portLabel)}`);
        port = -1;
      }
    } else if (exposed.length === 1) port = exposed[0]?.port ?? 0;
    else if (exposed.length > 1) {
      problems.push(
        `label phare.port: the container exposes ${exposed.map((p) => p.port).join(', ')}; say which one`,
      );
      port = -1;
    }
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) {
      if (k.startsWith('phare.meta.') && k.length > 11) meta[k.slice(11)] = v;
    }
    if (phareName.trim() === '') problems.push('label phare.service: service name is empty');
    else if (port >= 0) asked.push({ name: phareName, port, tags: list(labels['phare.tags']), meta });
  } else if (svcVar('SERVICE_IGNORE') === undefined) {
    const general = svcVar('SERVICE_NAME');
    if (exposed.length === 0 && general) {
      asked.push({ name: general, port: 0, tags: list(svcVar('SERVICE_TAGS')), meta: {} });
    }
    for (const { port } of exposed) {
      if (svcVar(`SERVICE_${port}_IGNORE`) !== undefined) continue;
      const specific = svcVar(`SERVICE_${port}_NAME`);
      const n = specific ?? (general && exposed.length > 1 ? `${general}-${port}` : general);
      if (!n) continue;
      const tags = list(svcVar(`SERVICE_${port}_TAGS`) ?? svcVar('SERVICE_TAGS'));
      asked.push({ name: n, port, tags, meta: {} });
    }
  }
  if (asked.length === 0) return { registrations: [], problems };
  if (!address) {
    problems.push(
      wanted
        ? `label phare.network: the container has no address on network ${JSON.stringify(wanted)}`
        : 'the container has no IP address on any network (network mode host or none?)',
    );
    return { registrations: [], problems };
  }

  const health = healthOf(c);
  let checkPath = labels['phare.check.http'];
  let intervalMs = DEFAULT_CHECK_INTERVAL_MS;
  const intervalLabel = labels['phare.check.interval'];
  if (intervalLabel !== undefined) {
    try {
      intervalMs = parseDuration(intervalLabel);
    } catch {
      problems.push(
        `label phare.check.interval: expected a duration such as 10s, got ${JSON.stringify(intervalLabel)}`,
      );
    }
  }
  if (checkPath !== undefined && !checkPath.startsWith('/')) {
    problems.push(
      `label phare.check.http: expected a path such as /health, got ${JSON.stringify(checkPath)}`,
    );
    checkPath = undefined;
  }

  const registrations = asked.map(({ name: svc, port, tags, meta }): ContainerRegistration => {
    const id = `${name}:${short}:${port}`;
    const checks: CheckInput[] = [];
    let healthHeld: ContainerRegistration['health'];
    if (health) {
      const checkId = `docker-health:${id}`;
      checks.push({
        checkId,
        name: `Docker health of ${name}`,
        notes: 'the container HEALTHCHECK state, as Docker reports it',
        serviceId: id,
        status: health.status,
        output: health.output,
        def: { ...noRunner(), type: '' },
      });
      healthHeld = { checkId, status: health.status, output: health.output };
    }
    if (checkPath !== undefined && port > 0) {
      const host = address.includes(':') ? `[${address}]` : address;
      checks.push({
        checkId: `docker-http:${id}`,
        name: `HTTP ${checkPath} of ${name}`,
        notes: 'from the phare.check.http label',
        serviceId: id,
        status: 'critical',
        def: {
          ...noRunner(),
          type: 'http',
          http: `http://${host}:${port}${checkPath}`,
          method: 'GET',
          intervalMs,
          timeoutMs: Math.min(intervalMs, 10_000),
        },
      });
    }
    return {
      service: {
        id,
        name: svc,
        kind: '',
        tags,
        address,
        port,
        meta: { ...meta, [CONTAINER_META]: c.Id, [CONTAINER_NAME_META]: name },
        weights: { Passing: 1, Warning: 1 },
        enableTagOverride: false,
      },
      checks,
      health: healthHeld,
    };
  });
  return { registrations, problems };
}

function noRunner() {
  return {
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
    outputMaxSize: 4096,
  };
}
