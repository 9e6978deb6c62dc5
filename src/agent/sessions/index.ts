export {
  createSessions,
  SESSION_LIMITS,
  type SessionCreateInput,
  SessionError,
  type Sessions,
  type SessionsOptions,
} from './sessions.ts';
