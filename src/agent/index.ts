/**
 * `phare/agent`: the agent as a library — resolve a configuration (the same flags, environment variables and
 * config file as `phare agent`; `FLAGS` is the table of them) and start it in-process.
 *
 * @example
 * import { resolveAgentConfig, startAgent } from 'phare/agent';
 * const agent = await startAgent({ config: resolveAgentConfig({ flags: { dev: true, 'http-addr': '127.0.0.1:0' } }) });
 * console.log(agent.httpUrl);
 * await agent.close();
 */
// Checks the Node.js version before anything else loads (see node-check.ts).
import '../node-check.ts';

export { type AgentOptions, type RunningAgent, startAgent } from './agent.ts';
export {
  type AgentConfig,
  FLAGS,
  type FlagName,
  type RawAgentConfig,
  resolveAgentConfig,
} from './config/index.ts';
