import type { Command } from 'commander';
// The `agent` command is loaded only when it runs (cli/main.ts), so the agent's door costs other commands nothing.
import { FLAGS, type FlagName, resolveAgentConfig, startAgent } from '../../agent/index.ts';
import type { RegisterCommand } from '../io.ts';

/**
 * `phare agent`: runs the registry until SIGINT/SIGTERM, then stops accepting, finishes in-flight writes,
 * closes the store and exits 0.
 */
export const register: RegisterCommand = (program: Command, io, state) => {
  const cmd = program.command('agent').description('run the Phare agent (Consul-compatible registry)');
  cmd.option('--config <file>', 'YAML or JSON config file (env PHARE_CONFIG)');
  for (const [flag, spec] of Object.entries(FLAGS)) {
    if (
      flag === 'dev' ||
      flag === 'dns-only-passing' ||
      flag === 'tls-verify-incoming' ||
      flag === 'acl-enabled' ||
      flag === 'acl-enable-token-persistence' ||
      flag === 'log-json'
    )
      cmd.option(`--${flag}`, `${spec.describe} (env ${spec.env})`);
    else if ('optionalValue' in spec) cmd.option(`--${flag} [value]`, `${spec.describe} (env ${spec.env})`);
    else if ('repeatable' in spec)
      cmd.option(`--${flag} <value>`, `${spec.describe} (env ${spec.env})`, (v: string, prev?: string[]) => [
        ...(prev ?? []),
        v,
      ]);
    else cmd.option(`--${flag} <value>`, `${spec.describe} (env ${spec.env})`);
  }
  cmd.action(async (opts: Record<string, unknown>) => {
    const flags: Record<string, unknown> = {};
    for (const flag of Object.keys(FLAGS) as FlagName[]) {
      const key = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      if (opts[key] !== undefined) flags[flag] = opts[key];
    }
    const config = resolveAgentConfig({
      flags,
      env: io.env,
      configFile: opts['config'] as string | undefined,
    });
    let agent: Awaited<ReturnType<typeof startAgent>>;
    try {
      agent = await startAgent({ config });
    } catch (err) {
      // A data dir another agent holds, or whose data is damaged: a usage problem with a message that says
      // what to do (exit 2, like a bad flag), never a stack trace.
      const code = (err as { code?: string }).code;
      if (code === 'PHARE_ERR_LOCKED' || code === 'PHARE_ERR_STORE_DAMAGED') {
        io.stderr(`phare agent: ${(err as Error).message}\n`);
        state.code = 2;
        return;
      }
      throw err;
    }
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          io.stderr(`phare agent: ${signal} again, exiting now\n`);
          process.exit(1);
        }
        stopping = true;
        agent.close().then(
          () => resolve(),
          (err: unknown) => {
            io.stderr(`phare agent: error while stopping: ${String(err)}\n`);
            state.code = 1;
            resolve();
          },
        );
      };
      // SIGHUP: re-read the TLS certificate files; open connections keep theirs (docs/security.md#tls)
      process.on('SIGHUP', () => agent.reloadTls());
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      // Printed once the handlers are in place: whoever waits for this banner may signal at once.
      io.stdout(
        `phare agent ${config.dev ? '(dev, in-memory store) ' : `(store: ${config.dataDir}) `}node=${config.node} dc=${config.datacenter}\n` +
          `  HTTP API: ${agent.httpUrl}/v1/\n` +
          (agent.httpsUrl ? `  HTTPS API: ${agent.httpsUrl}/v1/\n` : '') +
          `  Web UI:   ${agent.httpUrl}/ui/\n` +
          `  Metrics:  ${agent.httpUrl}/v1/agent/metrics?format=prometheus\n` +
          (agent.dnsAddress
            ? `  DNS:      ${agent.dnsAddress.host}:${agent.dnsAddress.port} (udp+tcp)\n`
            : ''),
      );
    });
  });
};
