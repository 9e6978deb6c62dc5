export {
  type AgentConfig,
  durationFlag,
  FLAGS,
  type FlagName,
  type HostPort,
  hostPort,
  LOG_LEVELS,
  type RawAgentConfig,
  resolveAgentConfig,
} from './config.ts';
