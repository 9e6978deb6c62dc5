/**
 * `phare ports check --agent`: compares the services registered with a Phare or Consul agent
 * (`GET /v1/agent/services`, https://developer.hashicorp.com/consul/api-docs/agent/service#list-services)
 * with the ports in `ports.yaml`. A registered service named like a component must use one of that
 * component's ports (host or internal port; `--env` narrows to one environment).
 */
import { resolveAgentAddress } from '../index.ts';
import { describeAllocation, keyString, type PortsModel, type PortsProblem } from './model.ts';

/** Options of the agent comparison. */
export interface AgentCheckOptions {
  /** Agent base URL. @default env PHARE_HTTP_ADDR, else http://127.0.0.1:8500 */
  url: string;
  /** Only this environment's ports count as right. @default every environment */
  env?: string;
  /** Request timeout in ms. @default 5000 */
  timeoutMs?: number;
}

/** The fields of a `/v1/agent/services` entry we use. */
interface AgentService {
  ID?: string;
  Service?: string;
  Port?: number;
}

/**
 * Agent URL from a flag value, else the SDK's order: `PHARE_HTTP_ADDR`, `CONSUL_HTTP_ADDR`, `CONSUL_HOST`/`CONSUL_PORT`,
 * `127.0.0.1:8500`.
 *
 * @example
 * agentUrl(undefined, { PHARE_HTTP_ADDR: '127.0.0.1:8501' }); // 'http://127.0.0.1:8501'
 */
export function agentUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  // the SDK's order (PHARE_HTTP_ADDR, CONSUL_HTTP_ADDR, CONSUL_HOST/PORT, 127.0.0.1:8500): one rule everywhere
  return resolveAgentAddress(flag ? { address: flag } : {}, env);
}

/**
 * Problems with the agent's registered services: wrong ports (errors), services ports.yaml does not know
 * (warnings), or an agent that does not answer (error).
 *
 * @example
 * const problems = await checkAgent(model, { url: 'http://127.0.0.1:8500', env: 'production' });
 */
export async function checkAgent(model: PortsModel, options: AgentCheckOptions): Promise<PortsProblem[]> {
  const where = { file: `${options.url}/v1/agent/services`, key: '' };
  let services: Record<string, AgentService>;
  try {
    const res = await fetch(`${options.url}/v1/agent/services`, {
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    services = (await res.json()) as Record<string, AgentService>;
    if (services === null || typeof services !== 'object') throw new Error('answer is not a JSON object');
  } catch (err) {
    return [
      {
        rule: 'agent',
        severity: 'error',
        ...where,
        message: `agent did not answer: ${(err as Error).message}`,
        expected: 'a running agent',
        found: 'no answer',
        fix: 'start the agent, or pass --agent <url> / set PHARE_HTTP_ADDR',
      },
    ];
  }
  if (options.env !== undefined && !(options.env in model.config.environments)) {
    return [
      {
        rule: 'unknown-environment',
        severity: 'error',
        ...where,
        message: `--env ${options.env} is not an environment of ${model.name}`,
        expected: Object.keys(model.config.environments).join(', '),
        found: options.env,
        fix: 'pass one of the expected environments',
      },
    ];
  }
  const problems: PortsProblem[] = [];
  for (const [id, s] of Object.entries(services)) {
    const name = s.Service ?? id;
    const mine = model.allocations.filter(
      (a) => a.owner === name && (options.env === undefined || a.env === null || a.env === options.env),
    );
    if (!model.allocations.some((a) => a.owner === name)) {
      problems.push({
        rule: 'agent',
        severity: 'warning',
        ...where,
        key: id,
        message: `registered service ${name} is not in ${model.name}`,
        expected: 'a component or infrastructure service',
        found: `${name} port ${s.Port ?? 0}`,
        fix: `add ${name} to ${model.name}, or ignore if it is not yours`,
      });
      continue;
    }
    if (mine.some((a) => a.port === s.Port || a.internal === s.Port)) continue;
    const first = mine[0];
    const loc = first ? model.locate(first.key) : undefined;
    problems.push({
      rule: 'agent',
      severity: 'error',
      file: first ? model.name : where.file,
      line: loc?.line,
      column: loc?.column,
      key: first ? keyString(first.key) : id,
      message: `registered service ${name} (id ${id}) uses port ${s.Port ?? 0}, not its port in ${model.name}`,
      expected:
        mine.map((a) => `${a.port} ${describeAllocation(a)}`).join(', ') || `no port in ${options.env}`,
      found: String(s.Port ?? 0),
      fix: `start ${name} with the port from ${model.name} (or change ${model.name} and run phare ports sync)`,
    });
  }
  return problems;
}
