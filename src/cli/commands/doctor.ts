/**
 * `phare doctor [SERVICE…] [--json]`: the seeds' troubleshooting sections in one command. What people do by
 * hand when "it cannot find the service" — `curl …/v1/status/leader`, `dig @agent web.service.consul`,
 * `getent hosts web`, `curl http://host:port/health`, `curl …/v1/health/checks/web`, `lsof -i :PORT`,
 * `phare ports check` — each becomes a line with a verdict (ok / warn / fail), what was seen and what to do.
 * Exit code 0 when nothing failed, 1 otherwise (warnings do not fail). The `--json` shape is
 * {@link DoctorReport}, documented in docs/doctor.md.
 */
import * as dnsp from 'node:dns/promises';
import { existsSync } from 'node:fs';
import { connect, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { type HealthCheck, type ServiceEntry, worstStatus } from '../../api/index.ts';
import { createConsulClient, PhareError, resolveAgentAddress } from '../../index.ts';
import {
  type Allocation,
  describeAllocation,
  type Listener,
  listListeners,
  loadPorts,
} from '../../ports/index.ts';
import type { CliIo, RegisterCommand } from '../io.ts';
import { parseTimeout } from './registry.ts';

/** A line's verdict: `fail` makes the exit code 1. */
export type Verdict = 'ok' | 'warn' | 'fail';

/** One finding of `phare doctor`. */
export interface DoctorFinding {
  verdict: Verdict;
  /** What was looked at. */
  check: 'agent' | 'dns' | 'resolver' | 'catalog' | 'tcp' | 'http' | 'check' | 'ports' | 'holder';
  /** The service the line is about, or null for the agent. */
  service: string | null;
  /** The instance (service ID) the line is about, or null. */
  instance: string | null;
  /** What was seen. */
  message: string;
  /** What to do about it (on warn and fail). */
  hint?: string;
}

/** What `phare doctor --json` prints. */
export interface DoctorReport {
  /** True when no line failed (exit code 0). */
  ok: boolean;
  agent: {
    /** The URL asked. */
    address: string;
    /** Where the address came from: `--http-addr`, `PHARE_HTTP_ADDR`, `CONSUL_HTTP_ADDR`, `CONSUL_HOST/CONSUL_PORT` or `default`. */
    source: string;
    reachable: boolean;
    node?: string;
    datacenter?: string;
    version?: string;
    /** `memory`, `sqlite` or `etcd` (Phare); absent for Consul. */
    store?: string;
    /** The agent's DNS `host:port`, or null when it has none. */
    dns?: string | null;
  };
  services: {
    name: string;
    instances: { id: string; node: string; address: string; port: number; status: string }[];
  }[];
  findings: DoctorFinding[];
  summary: Record<Verdict, number>;
}

interface DoctorOptions {
  httpAddr?: string;
  dnsAddr?: string;
  ports?: string;
  timeout: string;
  json?: boolean;
}

/** Consul's rule for names DNS can carry (agent/dns.go `InvalidDnsRe`): letters, digits and dashes. */
const DNS_SAFE = /^[A-Za-z0-9-]+$/;

export const register: RegisterCommand = (program: Command, io, state) => {
  program
    .command('doctor')
    .description(
      'check the agent, and each service through DNS, the system resolver, TCP, its HTTP check, ports.yaml and who holds its port; exit 1 when something fails',
    )
    .argument('[service...]', 'services to look at (default: every registered service)')
    .option('--http-addr <addr>', 'the agent (default: PHARE_HTTP_ADDR, CONSUL_HTTP_ADDR, 127.0.0.1:8500)')
    .option('--dns-addr <addr>', "the agent's DNS (default: what the agent reports, else 127.0.0.1:8600)")
    .option(
      '--ports <file>',
      'ports.yaml to compare registered ports with (default: ./ports.yaml when present)',
    )
    .option('--timeout <duration>', 'how long each probe may take', '2s')
    .option('--json', 'print the report as JSON (shape: docs/doctor.md)')
    .action(async (services: string[], opts: DoctorOptions) => {
      const timeoutMs = parseTimeout(opts.timeout, '--timeout');
      const report = await diagnose(services, opts, io, timeoutMs);
      io.stdout(opts.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
      state.code = report.ok ? 0 : 1;
    });
};

/** Which setting named the agent, in the SDK's order (transport.ts resolveAgentAddresses). */
function addressSource(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  if (flag) return '--http-addr';
  if (env.PHARE_HTTP_ADDR) return 'PHARE_HTTP_ADDR';
  if (env.CONSUL_HTTP_ADDR) return 'CONSUL_HTTP_ADDR';
  if (env.CONSUL_HOST || env.CONSUL_PORT) return 'CONSUL_HOST/CONSUL_PORT';
  return 'default';
}

async function diagnose(
  names: string[],
  opts: DoctorOptions,
  io: CliIo,
  timeoutMs: number,
): Promise<DoctorReport> {
  const findings: DoctorFinding[] = [];
  const add = (f: Omit<DoctorFinding, 'service' | 'instance'> & Partial<DoctorFinding>) =>
    findings.push({ service: null, instance: null, ...f });
  const address = resolveAgentAddress(opts.httpAddr ? { address: opts.httpAddr } : {}, io.env);
  const source = addressSource(opts.httpAddr, io.env);
  const agent: DoctorReport['agent'] = { address, source, reachable: false };
  const report: DoctorReport = {
    ok: false,
    agent,
    services: [],
    findings,
    summary: { ok: 0, warn: 0, fail: 0 },
  };
  const client = createConsulClient({ address, env: io.env, timeoutMs });
  try {
    // 1. The agent: reachable, and which one (a second agent on another port is a classic mix-up).
    let self: Record<string, unknown>;
    try {
      self = await client.agent.self(AbortSignal.timeout(timeoutMs));
    } catch (err) {
      add({
        verdict: 'fail',
        check: 'agent',
        message: `no agent answers at ${address} (${source === 'default' ? 'the default address' : `from ${source}`}): ${reason(err)}`,
        hint:
          source === 'default'
            ? 'start one (phare agent --dev), or point --http-addr / PHARE_HTTP_ADDR at yours'
            : `start the agent there, or fix ${source}`,
      });
      return finish(report);
    }
    const cfg = (self['Config'] ?? {}) as Record<string, unknown>;
    const debug = (self['DebugConfig'] ?? {}) as Record<string, unknown>;
    agent.reachable = true;
    agent.node = String(cfg['NodeName'] ?? '');
    agent.datacenter = String(cfg['Datacenter'] ?? '');
    agent.version = String(cfg['Version'] ?? '');
    const isPhare = debug['Phare'] === true;
    if (isPhare) agent.store = String(debug['Store'] ?? '');
    const dns = agentDns(opts.dnsAddr, debug);
    agent.dns = dns ? `${dns.host.includes(':') ? `[${dns.host}]` : dns.host}:${dns.port}` : null;
    const domain = String(debug['DNSDomain'] ?? 'consul.').replace(/\.$/, '');
    add({
      verdict: 'ok',
      check: 'agent',
      message:
        `${isPhare ? `phare ${String(debug['PhareVersion'] ?? '?')} (Consul API ${agent.version})` : `consul ${agent.version}`} at ${address}${source === 'default' ? '' : ` (from ${source})`}: ` +
        `node ${agent.node}, dc ${agent.datacenter}${agent.store ? `, store ${agent.store}` : ''}, ` +
        (agent.dns ? `DNS ${agent.dns}` : 'DNS off'),
    });
    if (!agent.dns)
      add({
        verdict: 'warn',
        check: 'dns',
        message: 'the agent serves no DNS: names cannot be looked up through it',
        hint: 'start the agent with --dns-addr 127.0.0.1:8600 (or pass --dns-addr if it listens elsewhere)',
      });

    // 2. ports.yaml, when there is one: registered ports are compared with it.
    const ports = portsModel(opts.ports, io, add);
    const listeners = await listListeners().catch(() => [] as Listener[]);

    // 3. Which services.
    const { value: catalog } = await client.catalog.services();
    const wanted =
      names.length > 0
        ? names
        : Object.keys(catalog)
            .filter((n) => n !== 'consul')
            .sort();
    if (names.length === 0 && wanted.length === 0)
      add({
        verdict: 'warn',
        check: 'catalog',
        message: 'no service is registered (besides the agent itself)',
        hint: 'register one (the SDK, phare run, or PUT /v1/agent/service/register)',
      });
    for (const name of wanted) {
      const at = { service: name };
      const { value: entries } = await client.health.service(name);
      report.services.push({
        name,
        instances: entries.map((e) => ({
          id: e.Service.ID,
          node: e.Node.Node,
          address: e.Service.Address || e.Node.Address,
          port: e.Service.Port ?? 0,
          status: worstStatus(e.Checks.map((c) => c.Status)),
        })),
      });
      const allocations = ports?.allocations.filter((a) => a.owner === name) ?? [];
      if (entries.length === 0) {
        add({
          ...at,
          verdict: 'fail',
          check: 'catalog',
          message: `${name} is not registered with the agent`,
          hint: `start it (it registers itself with the SDK, or wrap it in phare run); phare services lists what is registered`,
        });
        // Its port taken by someone else is the usual reason it never came up (the seeds' "port already in use").
        for (const a of allocations) {
          const holders = listeners.filter((l) => l.port === a.port);
          if (holders.length > 0)
            add({
              ...at,
              verdict: 'fail',
              check: 'holder',
              message: `${name}'s port ${a.port} (${describeAllocation(a)} in ${ports?.name}) is held by ${holderText(holders)}: ${name} cannot bind it`,
              hint: `stop that process${holders[0]?.pid ? ` (kill ${holders[0].pid})` : ''}, or give ${name} another port in ${ports?.name} (phare ports next)`,
            });
        }
        continue;
      }
      const counts = countStatus(entries);
      add({
        ...at,
        verdict: 'ok',
        check: 'catalog',
        message: `${entries.length} instance${entries.length === 1 ? '' : 's'}: ${counts.passing} passing, ${counts.warning} warning, ${counts.critical} critical`,
      });
      if (dns) findings.push(...(await agentDnsFinding(name, entries, dns, domain, timeoutMs)));
      findings.push(await resolverFinding(name, entries, domain, timeoutMs));

      // 4. Each instance.
      for (const e of entries) {
        const inst = { service: name, instance: e.Service.ID };
        const host = e.Service.Address || e.Node.Address;
        const port = e.Service.Port ?? 0;
        const local = await isLocal(host);
        const held = local ? holdersOf(listeners, host, port) : [];
        const tcp = await tcpProbe(host, port, timeoutMs);
        const failing = e.Checks.some((c) => c.Status === 'critical');
        add({
          ...inst,
          verdict: tcp.ok ? 'ok' : 'fail',
          check: 'tcp',
          message: tcp.ok
            ? `${hostPort(host, port)} accepts connections (${tcp.ms} ms)`
            : `${hostPort(host, port)}: ${tcp.error}${local && held.length === 0 ? ' — nothing on this host listens on that port' : ''}`,
          ...(tcp.ok
            ? {}
            : {
                hint: `is ${name} running, and bound to ${port}? (its logs; phare ports in-use lists who listens where)`,
              }),
        });
        for (const c of e.Checks) {
          const url = c.Definition?.HTTP;
          if (typeof url === 'string' && url) add({ ...inst, ...(await httpProbe(c, url, timeoutMs)) });
        }
        // node checks only when they fail: a passing serfHealth on every instance is noise
        for (const c of e.Checks)
          if (c.ServiceID || c.Status !== 'passing') add({ ...inst, ...checkFinding(c, e) });
        if (ports && allocations.length > 0)
          add({ ...inst, ...portsFinding(name, port, allocations, ports.name) });
        if (local && held.length > 0) {
          const owner = ports?.allocations.find((a) => a.port === port && a.owner !== name);
          const text = holderText(held);
          if (owner)
            add({
              ...inst,
              verdict: 'fail',
              check: 'holder',
              message: `port ${port} is held by ${text}, and ${ports?.name} gives ${port} to ${owner.owner} (${describeAllocation(owner)})`,
              hint: `${name} is registered on another component's port: start it on its own port from ${ports?.name}`,
            });
          else if (failing || !tcp.ok)
            add({
              ...inst,
              verdict: 'warn',
              check: 'holder',
              message: `port ${port} is held by ${text} while ${e.Service.ID}'s checks fail: if that process is not ${name}, another program has ${name}'s port`,
              hint: `compare with how ${name} was started (lsof -i :${port}); stop the other program or move ${name} to a free port`,
            });
          else add({ ...inst, verdict: 'ok', check: 'holder', message: `port ${port} is held by ${text}` });
        }
      }
    }
  } catch (err) {
    if (err instanceof PhareError && err.code === 'PHARE_ERR_INVALID_ARGUMENT') throw err;
    add({
      verdict: 'fail',
      check: 'agent',
      message: `the agent stopped answering: ${reason(err)}`,
      hint: 'run phare doctor again once it is back',
    });
  } finally {
    await client.close();
  }
  return finish(report);
}

function finish(report: DoctorReport): DoctorReport {
  for (const f of report.findings) report.summary[f.verdict]++;
  report.ok = report.summary.fail === 0;
  return report;
}

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.code ?? e?.message ?? String(err);
}

function countStatus(entries: readonly ServiceEntry[]): {
  passing: number;
  warning: number;
  critical: number;
} {
  const out = { passing: 0, warning: 0, critical: 0 };
  for (const e of entries) {
    const w = worstStatus(e.Checks.map((c) => c.Status));
    if (w === 'passing') out.passing++;
    else if (w === 'warning') out.warning++;
    else out.critical++;
  }
  return out;
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The agent's DNS: `--dns-addr`, else what agent/self reports (Consul's `DebugConfig.DNSAddrs`). */
function agentDns(
  flag: string | undefined,
  debug: Record<string, unknown>,
): { host: string; port: number } | null {
  const parse = (raw: string, what: string) => {
    const m = /^(?:[a-z]+:\/\/)?(\[[^\]]+\]|[^:]+):(\d+)$/.exec(raw.trim());
    if (!m)
      throw new PhareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `${what}: ${JSON.stringify(raw)} is not host:port, e.g. 127.0.0.1:8600`,
      );
    const host = (m[1] as string).replace(/^\[|\]$/g, '');
    // an agent bound to every interface is asked on loopback
    return { host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port: Number(m[2]) };
  };
  if (flag) return parse(flag, '--dns-addr');
  const addrs = debug['DNSAddrs'];
  if (Array.isArray(addrs)) {
    const udp = addrs.find((a) => typeof a === 'string' && a.startsWith('udp://')) ?? addrs[0];
    return typeof udp === 'string' ? parse(udp, 'agent DNSAddrs') : null;
  }
  return { host: '127.0.0.1', port: 8600 }; // Consul's default when the agent does not say
}

/** `dig @agent NAME.service.consul SRV`, and what its answer means. */
async function agentDnsFinding(
  name: string,
  entries: readonly ServiceEntry[],
  dns: { host: string; port: number },
  domain: string,
  timeoutMs: number,
): Promise<DoctorFinding[]> {
  const at = { service: name, instance: null, check: 'dns' as const };
  const qname = `${name}.service.${domain}`;
  const server = hostPort(dns.host, dns.port);
  const r = new dnsp.Resolver({ timeout: timeoutMs, tries: 1 });
  r.setServers([server]);
  const counts = countStatus(entries);
  try {
    const srv = await r.resolveSrv(qname);
    const ports = [...new Set(srv.map((s) => s.port))].sort((a, b) => a - b);
    return [
      {
        ...at,
        verdict: 'ok',
        message: `${qname} → ${srv.length} answer${srv.length === 1 ? '' : 's'} (port${ports.length === 1 ? '' : 's'} ${ports.join(', ')}) from the agent's DNS ${server}`,
      },
    ];
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ETIMEOUT' || code === 'ECONNREFUSED' || code === 'ESERVFAIL')
      return [
        {
          ...at,
          verdict: 'fail',
          message: `the agent's DNS at ${server} does not answer ${qname} (${code})`,
          hint: 'is DNS on (--dns-addr)? pass --dns-addr if the agent listens elsewhere',
        },
      ];
    if (!DNS_SAFE.test(name))
      return [
        {
          ...at,
          verdict: 'fail',
          message: `${qname} does not resolve: "${name}" has characters a DNS label cannot carry (letters, digits and dashes only), so DNS cannot find it`,
          hint: `register it under a DNS-safe name (e.g. ${name.replace(/[^A-Za-z0-9-]+/g, '-')}), or reach it through the HTTP API / SDK`,
        },
      ];
    if (counts.passing + counts.warning === 0)
      return [
        {
          ...at,
          verdict: 'fail',
          message: `${qname} does not resolve (${code}): DNS answers only healthy instances and every instance of ${name} is critical`,
          hint: 'fix the failing checks below; DNS answers again once one passes',
        },
      ];
    return [
      {
        ...at,
        verdict: 'fail',
        message: `${qname} does not resolve (${code}) although ${counts.passing + counts.warning} instance(s) are healthy`,
        hint: `ask the agent directly: dig @${dns.host} -p ${dns.port} ${qname} SRV; is this the agent ${name} registered with?`,
      },
    ];
  }
}

/** `getent hosts NAME` (and NAME.service.consul): what programs that use getaddrinfo see. */
async function resolverFinding(
  name: string,
  entries: readonly ServiceEntry[],
  domain: string,
  timeoutMs: number,
): Promise<DoctorFinding> {
  const at = { service: name, instance: null, check: 'resolver' as const };
  const lookup = async (host: string): Promise<string[]> => {
    const timer = new Promise<never>((_, reject) => {
      const t = setTimeout(
        () => reject(Object.assign(new Error('timeout'), { code: 'ETIMEOUT' })),
        timeoutMs,
      );
      t.unref();
    });
    const found = await Promise.race([dnsp.lookup(host, { all: true }), timer]);
    return found.map((a) => a.address);
  };
  if (!DNS_SAFE.test(name))
    return {
      ...at,
      verdict: 'warn',
      message: `"${name}" is not a host name (letters, digits and dashes only): programs that use getaddrinfo cannot look it up`,
      hint: `register it under a DNS-safe name (e.g. ${name.replace(/[^A-Za-z0-9-]+/g, '-')}) if clients find it by name`,
    };
  const addresses = new Set(entries.map((e) => e.Service.Address || e.Node.Address));
  const tried: string[] = [];
  for (const host of [name, `${name}.service.${domain}`]) {
    try {
      const found = await lookup(host);
      const matches = found.some(
        (a) => addresses.has(a) || (isLoopbackAddress(a) && [...addresses].some(isLoopbackAddress)),
      );
      if (!matches)
        return {
          ...at,
          verdict: 'warn',
          message: `the system resolver gives ${host} → ${found.join(', ')}, which is no registered instance of ${name} (${[...addresses].join(', ')})`,
          hint: `programs that look up ${host} (curl, HTTP clients) reach something else: check /etc/hosts, the Docker network, or use the SDK`,
        };
      return { ...at, verdict: 'ok', message: `the system resolver gives ${host} → ${found.join(', ')}` };
    } catch (err) {
      tried.push(`${host} (${(err as { code?: string }).code ?? 'error'})`);
    }
  }
  return {
    ...at,
    verdict: 'warn',
    message: `the system resolver finds neither ${tried.join(' nor ')}: programs that use getaddrinfo (curl, most HTTP clients) cannot find ${name} by name; the SDK and the agent's DNS can`,
    hint: `in Docker Compose, put the caller on ${name}'s network; elsewhere forward .${domain} to the agent (docs/dns.md) or discover through the SDK`,
  };
}

function isLoopbackAddress(a: string): boolean {
  return a === '::1' || a.startsWith('127.') || a === '::ffff:127.0.0.1';
}

/** Whether `host` is this machine (its sockets are in our /proc). */
async function isLocal(host: string): Promise<boolean> {
  const mine = new Set<string>(['localhost']);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) mine.add(i.address);
  if (isLoopbackAddress(host) || mine.has(host)) return true;
  if (isIP(host)) return false;
  const found = await dnsp.lookup(host, { all: true }).catch(() => []);
  return found.some((a) => isLoopbackAddress(a.address) || mine.has(a.address));
}

function holdersOf(listeners: readonly Listener[], host: string, port: number): Listener[] {
  return listeners.filter(
    (l) =>
      l.port === port &&
      (l.address === host ||
        l.address === '0.0.0.0' ||
        l.address === '::' ||
        l.address === `::ffff:${host}` ||
        isLoopbackAddress(host) === isLoopbackAddress(l.address)),
  );
}

function holderText(held: readonly Listener[]): string {
  const l = held.find((h) => h.pid !== undefined) ?? held[0];
  if (!l) return 'nobody';
  return l.pid !== undefined
    ? `pid ${l.pid}${l.command ? ` (${l.command})` : ''}`
    : `a process of uid ${l.uid} (its pid is not visible without root)`;
}

async function tcpProbe(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ ok: true; ms: number } | { ok: false; error: string }> {
  const started = performance.now();
  return new Promise((done) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      done({ ok: false, error: `no answer within ${timeoutMs} ms (a host that is down, or a firewall)` });
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      done({ ok: true, ms: Math.round(performance.now() - started) });
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done({
        ok: false,
        error:
          err.code === 'ECONNREFUSED' ? 'connection refused' : `cannot connect (${err.code ?? err.message})`,
      });
    });
  });
}

/** `curl -v http://host:port/health`: the endpoint the agent polls, asked now. */
async function httpProbe(
  c: HealthCheck,
  url: string,
  timeoutMs: number,
): Promise<Omit<DoctorFinding, 'service' | 'instance'>> {
  const method = typeof c.Definition.Method === 'string' && c.Definition.Method ? c.Definition.Method : 'GET';
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.Definition.Header ?? {})) headers[k] = (v as string[]).join(', ');
  const started = performance.now();
  try {
    const res = await fetch(url, {
      method,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = (await res.text()).replace(/\s+/g, ' ').trim().slice(0, 120);
    const ms = Math.round(performance.now() - started);
    const ok = res.status >= 200 && res.status < 300;
    // the body matters when it says why it failed; a passing one is noise
    const seen = `${method} ${url} → ${res.status} ${res.statusText} in ${ms} ms${body && !ok ? `: ${body}` : ''}`;
    // Consul's HTTP check: 2xx passing, 429 warning, anything else critical.
    if (ok) return { verdict: 'ok', check: 'http', message: seen };
    if (res.status === 429)
      return {
        verdict: 'warn',
        check: 'http',
        message: seen,
        hint: 'the service reports itself degraded (429 = warning)',
      };
    return {
      verdict: 'fail',
      check: 'http',
      message: seen,
      hint:
        res.status === 404
          ? `nothing serves ${new URL(url).pathname} there: wrong check path, or another program on that port`
          : 'the service says it is unhealthy: its logs say why (a dependency down?)',
    };
  } catch (err) {
    return {
      verdict: 'fail',
      check: 'http',
      message: `${method} ${url}: ${reason(err) === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : reason(err)}`,
      hint: 'the agent cannot reach this endpoint either: is the service up and is the check URL right?',
    };
  }
}

/** `curl …/v1/health/checks/NAME`: each check's status and last output, a failing node check named as the cause. */
function checkFinding(c: HealthCheck, e: ServiceEntry): Omit<DoctorFinding, 'service' | 'instance'> {
  const verdict: Verdict = c.Status === 'passing' ? 'ok' : c.Status === 'warning' ? 'warn' : 'fail';
  const kind = [c.Type || 'check', c.Interval ? `every ${c.Interval}` : ''].filter(Boolean).join(', ');
  const output = (c.Output || '').replace(/\s+/g, ' ').trim();
  const max = c.Status === 'passing' ? 80 : 240;
  const shown = output.length > max ? `${output.slice(0, max)}…` : output;
  if (!c.ServiceID) {
    return {
      verdict,
      check: 'check',
      message:
        c.Status === 'passing'
          ? `node check "${c.CheckID}" (${kind}) passing${shown ? `: ${shown}` : ''}`
          : `node check "${c.CheckID}" is ${c.Status} → every service on node ${e.Node.Node} is ${c.Status}${shown ? `: ${shown}` : ''}`,
      ...(verdict === 'ok'
        ? {}
        : { hint: `fix node ${e.Node.Node} (or phare maint disable if it is in maintenance)` }),
    };
  }
  const deregister = c.Definition?.DeregisterCriticalServiceAfter;
  return {
    verdict,
    check: 'check',
    message: `check "${c.CheckID}" (${kind}) ${c.Status}${shown ? `: ${shown}` : ''}`,
    ...(verdict === 'ok'
      ? {}
      : {
          hint:
            c.CheckID === '_service_maintenance:' + c.ServiceID
              ? `in maintenance: phare maint disable --service ${c.ServiceID}`
              : `${c.Type === 'ttl' ? 'the service stopped reporting (TTL): is it alive?' : 'the output above is what the agent saw'}` +
                (typeof deregister === 'string' && c.Status === 'critical'
                  ? `; the agent deregisters it after ${deregister} critical`
                  : ''),
        }),
  };
}

function portsFinding(
  name: string,
  port: number,
  allocations: readonly Allocation[],
  file: string,
): Omit<DoctorFinding, 'service' | 'instance'> {
  const match = allocations.find((a) => a.port === port || a.internal === port);
  if (match)
    return {
      verdict: 'ok',
      check: 'ports',
      message: `port ${port} is ${name}'s in ${file} (${describeAllocation(match)})`,
    };
  return {
    verdict: 'fail',
    check: 'ports',
    message: `registered on port ${port}, but ${file} gives ${name} ${allocations.map((a) => `${a.port} (${describeAllocation(a)})`).join(', ')}`,
    hint: `start ${name} with its port from ${file}, or change ${file} and run phare ports sync`,
  };
}

function portsModel(
  flag: string | undefined,
  io: CliIo,
  add: (f: Omit<DoctorFinding, 'service' | 'instance'>) => void,
): { allocations: Allocation[]; name: string } | null {
  const file = flag ? resolve(io.cwd, flag) : resolve(io.cwd, 'ports.yaml');
  if (!flag && !existsSync(file)) return null;
  try {
    const { model, problems } = loadPorts(file);
    const errors = problems.filter((p) => p.severity === 'error');
    if (!model) {
      add({
        verdict: 'warn',
        check: 'ports',
        message: `${file} cannot be read as ports.yaml (${errors[0]?.message ?? 'invalid'})`,
        hint: 'run phare ports check for every problem',
      });
      return null;
    }
    if (errors.length > 0)
      add({
        verdict: 'warn',
        check: 'ports',
        message: `${model.name} has ${errors.length} problem${errors.length === 1 ? '' : 's'} (${errors[0]?.message})`,
        hint: 'run phare ports check',
      });
    return { allocations: model.allocations, name: model.name };
  } catch (err) {
    add({
      verdict: 'warn',
      check: 'ports',
      message: (err as Error).message,
      hint: 'pass --ports <file>, or run doctor where ports.yaml is',
    });
    return null;
  }
}

const MARK: Record<Verdict, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

/** The human report: one line per finding, grouped by service and instance, hints under failures. */
function render(r: DoctorReport): string {
  const lines: string[] = [];
  const line = (f: DoctorFinding, indent: string) => {
    lines.push(`${indent}${MARK[f.verdict]}  ${f.check.padEnd(8)} ${f.message}`);
    if (f.hint && f.verdict !== 'ok') lines.push(`${indent}      ${' '.repeat(8)} → ${f.hint}`);
  };
  for (const f of r.findings.filter((x) => x.service === null)) line(f, '');
  for (const s of [...new Set(r.findings.map((f) => f.service).filter((x): x is string => x !== null))]) {
    lines.push('', s);
    for (const f of r.findings.filter((x) => x.service === s && x.instance === null)) line(f, '  ');
    const svc = r.services.find((x) => x.name === s);
    for (const inst of svc?.instances ?? []) {
      lines.push(`  ${inst.id} on ${inst.node} at ${hostPort(inst.address, inst.port)} (${inst.status})`);
      for (const f of r.findings.filter((x) => x.service === s && x.instance === inst.id)) line(f, '    ');
    }
  }
  const { ok, warn, fail } = r.summary;
  lines.push(
    '',
    `${fail === 0 ? 'healthy' : 'problems found'}: ${ok} ok, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failure${fail === 1 ? '' : 's'}`,
  );
  return `${lines.join('\n')}\n`;
}
