export {
  type AgentConfig,
  durationFlag,
  type HostPort,
  hostPort,
  type RawAgentConfig,
  resolveAgentConfig,
  resolveNodeId,
} from './config.ts';
export { FLAGS, type FlagName, LOG_LEVELS } from './flags.ts';
