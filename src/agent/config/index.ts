export {
  type AgentConfig,
  durationFlag,
  type HostPort,
  hostPort,
  isLoopback,
  namedBySource,
  type RawAgentConfig,
  resolveAgentConfig,
  resolveNodeId,
} from './config.ts';
export { FLAGS, type FlagName, LOG_LEVELS } from './flags.ts';
