export { type AgentOptions, type RunningAgent, startAgent } from './agent.ts';
export { type AgentConfig, resolveAgentConfig } from './config/index.ts';
