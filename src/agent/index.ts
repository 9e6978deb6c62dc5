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
