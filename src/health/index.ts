/**
 * `phare/health`: dependency checks, Kubernetes-style probes, framework adapters and graceful shutdown for
 * the services themselves (not the agent's check engine, which lives in `agent/health`).
 */
// Checks the Node.js version before anything else loads (see node-check.ts).
import '../node-check.ts';

export { type ExpressMiddleware, expressHealth } from './adapters/express.ts';
export { type FastifyHealthOptions, fastifyHealth } from './adapters/fastify.ts';
export { type HonoLikeContext, honoHealth } from './adapters/hono.ts';
export { healthListener } from './adapters/node.ts';
export { type EventLoopDelayCheckOptions, eventLoopDelayCheck } from './checks/event-loop.ts';
export { type HttpCheckOptions, httpCheck } from './checks/http.ts';
export { type MemoryCheckOptions, memoryCheck } from './checks/memory.ts';
export { type PostgresCheckOptions, type PostgresLike, postgresCheck } from './checks/postgres.ts';
export { type RedisLike, redisCheck } from './checks/redis.ts';
export { type TcpCheckOptions, tcpCheck } from './checks/tcp.ts';
export { DEADLINE_HEADER, deadlineSignal, type RequestWithHeaders, remainingDeadline } from './deadline.ts';
export {
  createHealth,
  type Health,
  type HealthEndpoint,
  type HealthOptions,
  httpStatusOf,
  LIFECYCLE_CHECK,
} from './health.ts';
export {
  createGracefulShutdown,
  type GracefulShutdown,
  type GracefulShutdownOptions,
  type ShutdownHook,
  type ShutdownServer,
} from './shutdown.ts';
export type * from './types.ts';
