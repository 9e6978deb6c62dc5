/**
 * The operator's read-and-steer commands, in Consul CLI shapes where Consul has the command:
 * `phare services`, `phare catalog nodes|services`, `phare members`, `phare health SERVICE`,
 * `phare watch SERVICE`, `phare wait SERVICE…`, `phare maint`. Built on the public SDK client (`phare`), like
 * any user's tool; the agent comes from `--http-addr`, else `PHARE_HTTP_ADDR`, `CONSUL_HTTP_ADDR`, … (the SDK's
 * order). Every listing takes `--json`. Exit codes: 0 done, 1 the agent failed or the condition was not met,
 * 2 bad usage.
 */
import type { Command } from 'commander';
import { parseDuration, type ServiceEntry, worstStatus } from '../../api/index.ts';
import { type ConsulClient, createConsulClient, PhareError, watch } from '../../index.ts';
import { table } from '../../ports/index.ts';
import type { CliIo, CliState, RegisterCommand } from '../io.ts';

interface AgentOpts {
  httpAddr?: string;
  json?: boolean;
}

function addAgentOptions(cmd: Command, json = true): Command {
  cmd.option('--http-addr <addr>', 'the agent (default: PHARE_HTTP_ADDR, CONSUL_HTTP_ADDR, 127.0.0.1:8500)');
  if (json) cmd.option('--json', 'print JSON instead of a table');
  return cmd;
}

function clientFor(opts: AgentOpts, io: CliIo): ConsulClient {
  return createConsulClient({ ...(opts.httpAddr ? { address: opts.httpAddr } : {}), env: io.env });
}

/** Runs `fn` with a client, closing it after; agent failures become one line and exit code 1. */
async function withClient(
  opts: AgentOpts,
  io: CliIo,
  state: CliState,
  fn: (c: ConsulClient) => Promise<void>,
): Promise<void> {
  const client = clientFor(opts, io);
  try {
    await fn(client);
  } catch (err) {
    if (
      err instanceof PhareError &&
      (err.code === 'PHARE_ERR_INVALID_ARGUMENT' || err.code === 'PHARE_ERR_INVALID_CONFIG')
    )
      throw err;
    io.stderr(`phare: ${client.address}: ${err instanceof Error ? err.message : String(err)}\n`);
    state.code = 1;
  } finally {
    await client.close();
  }
}

function json(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** Parses `60s`, `2m`, `500ms`, or plain seconds. */
export function parseTimeout(raw: string, flag: string): number {
  const text = raw.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000; // plain seconds
  try {
    const ms = parseDuration(text); // Go durations, as everywhere else in Phare
    if (ms >= 0) return ms;
  } catch {
    // reported below
  }
  throw new PhareError(
    'PHARE_ERR_INVALID_ARGUMENT',
    `${flag}: ${JSON.stringify(raw)} is not a duration; expected e.g. 60s, 2m, 500ms`,
  );
}

function instanceRows(entries: readonly ServiceEntry[]): string[][] {
  return entries.map((e) => {
    const status = worstStatus(e.Checks.map((c) => c.Status));
    const addr = `${e.Service.Address || e.Node.Address}:${e.Service.Port}`;
    const failing = e.Checks.filter((c) => c.Status !== 'passing')
      .map((c) => `${c.CheckID}: ${(c.Output || c.Status).split('\n')[0]?.slice(0, 80)}`)
      .join('; ');
    return [e.Service.ID, e.Node.Node, addr, status, (e.Service.Tags ?? []).join(','), failing];
  });
}

export const register: RegisterCommand = (program: Command, io, state) => {
  // phare services [--tag T] [--json]
  addAgentOptions(
    program
      .command('services')
      .description('list the services in the catalog with their tags and instance health')
      .option('--tag <tag>', 'only services carrying this tag'),
  ).action((opts: AgentOpts & { tag?: string }) =>
    withClient(opts, io, state, async (c) => {
      const { value: services } = await c.catalog.services();
      const names = Object.keys(services)
        .filter((n) => !opts.tag || (services[n] ?? []).includes(opts.tag))
        .sort();
      // health per service: each instance counted once, by the worst of its checks (node checks included)
      const out: {
        name: string;
        tags: string[];
        instances: number;
        passing: number;
        warning: number;
        critical: number;
      }[] = [];
      for (const name of names) {
        const { value: entries } = await c.health.service(name);
        const counts = { passing: 0, warning: 0, critical: 0 };
        for (const e of entries) {
          const w = worstStatus(e.Checks.map((ch) => ch.Status));
          if (w === 'passing') counts.passing++;
          else if (w === 'warning') counts.warning++;
          else counts.critical++;
        }
        out.push({ name, tags: services[name] ?? [], instances: entries.length, ...counts });
      }
      if (opts.json) return json(io, out);
      io.stdout(
        table(
          ['SERVICE', 'INSTANCES', 'PASSING', 'WARNING', 'CRITICAL', 'TAGS'],
          out.map((s) => [
            s.name,
            String(s.instances),
            String(s.passing),
            String(s.warning),
            String(s.critical),
            s.tags.join(','),
          ]),
        ),
      );
    }),
  );

  // phare catalog nodes | services (Consul's `consul catalog …`)
  const catalog = program.command('catalog').description('the catalog: nodes and services');
  addAgentOptions(catalog.command('nodes').description('list the nodes')).action((opts: AgentOpts) =>
    withClient(opts, io, state, async (c) => {
      const { value: nodes } = await c.catalog.nodes();
      if (opts.json) return json(io, nodes);
      io.stdout(
        table(
          ['NODE', 'ID', 'ADDRESS', 'DC'],
          nodes.map((n) => [n.Node, (n.ID ?? '').slice(0, 8), n.Address, n.Datacenter ?? '']),
        ),
      );
    }),
  );
  addAgentOptions(catalog.command('services').description('list the service names with their tags')).action(
    (opts: AgentOpts) =>
      withClient(opts, io, state, async (c) => {
        const { value } = await c.catalog.services();
        if (opts.json) return json(io, value);
        io.stdout(
          table(
            ['SERVICE', 'TAGS'],
            Object.entries(value)
              .sort()
              .map(([n, t]) => [n, t.join(',')]),
          ),
        );
      }),
  );

  // phare members
  addAgentOptions(
    program.command('members').description('list the agents (members) and their status'),
  ).action((opts: AgentOpts) =>
    withClient(opts, io, state, async (c) => {
      const members = await c.agent.members();
      if (opts.json) return json(io, members);
      const STATUS: Record<number, string> = { 0: 'none', 1: 'alive', 2: 'leaving', 3: 'left', 4: 'failed' };
      io.stdout(
        table(
          ['NODE', 'ADDRESS', 'STATUS', 'DC'],
          members.map((m) => {
            const tags = (m['Tags'] ?? {}) as Record<string, string>;
            return [
              String(m['Name'] ?? ''),
              `${String(m['Addr'] ?? '')}:${String(m['Port'] ?? '')}`,
              STATUS[Number(m['Status'])] ?? String(m['Status']),
              tags['dc'] ?? '',
            ];
          }),
        ),
      );
    }),
  );

  // phare health SERVICE [--passing]
  addAgentOptions(
    program
      .command('health')
      .description("a service's instances with their checks")
      .argument('<service>', 'service name')
      .option('--passing', 'only instances whose checks all pass'),
  ).action((service: string, opts: AgentOpts & { passing?: boolean }) =>
    withClient(opts, io, state, async (c) => {
      const { value: entries } = await c.health.service(service, { passing: opts.passing === true });
      if (opts.json) return json(io, entries);
      if (entries.length === 0) {
        io.stderr(`phare: no ${opts.passing ? 'passing ' : ''}instance of "${service}"\n`);
        state.code = 1;
        return;
      }
      io.stdout(table(['ID', 'NODE', 'ADDRESS', 'STATUS', 'TAGS', 'FAILING CHECKS'], instanceRows(entries)));
    }),
  );

  // phare watch SERVICE: one line (or one JSON document) per change, until interrupted
  addAgentOptions(
    program
      .command('watch')
      .description("stream a service's instances as they change (blocking queries; Ctrl-C stops)")
      .argument('<service>', 'service name')
      .option('--passing', 'only passing instances')
      .option('--count <n>', 'stop after this many changes (the first answer counts)'),
  ).action((service: string, opts: AgentOpts & { passing?: boolean; count?: string }) => {
    const client = clientFor(opts, io);
    const limit = opts.count === undefined ? Number.POSITIVE_INFINITY : Number(opts.count);
    if (!Number.isInteger(limit) || limit < 1)
      throw new PhareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `--count: expected a whole number >= 1, got ${JSON.stringify(opts.count)}`,
      );
    return new Promise<void>((resolve) => {
      let seen = 0;
      let failing = false;
      const stop = () => {
        w.stop();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void client.close().then(resolve);
      };
      const w = watch((q) => client.health.service(service, { ...q, passing: opts.passing === true }), {
        onChange: (entries, index) => {
          failing = false;
          seen++;
          if (opts.json)
            io.stdout(`${JSON.stringify({ index, time: new Date().toISOString(), instances: entries })}\n`);
          else {
            const states = instanceRows(entries).map((r) => `${r[0]}=${r[3]}`);
            io.stdout(
              `${new Date().toISOString()} ${service} index=${index} ${entries.length} instance(s)${states.length ? `: ${states.join(' ')}` : ''}\n`,
            );
          }
          if (seen >= limit) stop();
        },
        onError: (err, failures) => {
          if (!failing)
            io.stderr(
              `phare watch: ${client.address}: ${err instanceof Error ? err.message : String(err)} (retrying)\n`,
            );
          failing = failures > 0;
        },
      });
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  });

  // phare wait SERVICE… [--passing] [--timeout 60s]
  addAgentOptions(
    program
      .command('wait')
      .description(
        'block until each service has an instance (a passing one with --passing); exit 1 on timeout',
      )
      .argument('<service...>', 'service names')
      .option('--passing', 'wait for an instance whose checks all pass')
      .option('--timeout <duration>', 'give up after this long (60s, 2m…)', '60s'),
    false,
  ).action((services: string[], opts: AgentOpts & { passing?: boolean; timeout: string }) => {
    const timeoutMs = parseTimeout(opts.timeout, '--timeout');
    return withClient(opts, io, state, async (c) => {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeoutMs);
      const started = Date.now();
      const waitOne = async (service: string): Promise<boolean> => {
        let index = 0;
        while (!abort.signal.aborted) {
          const left = timeoutMs - (Date.now() - started);
          try {
            // one blocking query per service per change: no polling loop
            const r = await c.health.service(service, {
              passing: opts.passing === true,
              index,
              waitMs: Math.max(1000, Math.min(left, 300_000)),
              signal: abort.signal,
            });
            if (r.value.length > 0) return true;
            index = r.index;
          } catch (err) {
            if (abort.signal.aborted) return false;
            throw err;
          }
        }
        return false;
      };
      try {
        const results = await Promise.all(services.map(async (s) => [s, await waitOne(s)] as const));
        const missing = results.filter(([, ok]) => !ok).map(([s]) => s);
        if (missing.length > 0) {
          io.stderr(
            `phare wait: timed out after ${opts.timeout} waiting for ${opts.passing ? 'a passing instance of ' : 'an instance of '}${missing.join(', ')}\n`,
          );
          state.code = 1;
        } else
          io.stdout(`${services.join(', ')}: ready after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      } finally {
        clearTimeout(timer);
      }
    });
  });

  // phare maint (enable|disable) [--service ID] [--reason R]  (Consul: consul maint -enable -service=ID)
  addAgentOptions(
    program
      .command('maint')
      .description("put the agent's node, or one of its services, in maintenance (or take it out)")
      .argument('<action>', 'enable or disable')
      .option('--service <id>', 'a service ID instead of the whole node')
      .option('--reason <text>', 'why, shown in the maintenance check'),
    false,
  ).action((action: string, opts: AgentOpts & { service?: string; reason?: string }) => {
    if (action !== 'enable' && action !== 'disable')
      throw new PhareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `maint: expected "enable" or "disable", got ${JSON.stringify(action)}`,
      );
    return withClient(opts, io, state, async (c) => {
      const enable = action === 'enable';
      if (opts.service) await c.agent.maintenance(opts.service, enable, opts.reason);
      else await c.agent.nodeMaintenance(enable, opts.reason);
      io.stdout(
        `${opts.service ? `service ${opts.service}` : 'node'}: maintenance ${enable ? 'enabled' : 'disabled'}\n`,
      );
    });
  });
};
