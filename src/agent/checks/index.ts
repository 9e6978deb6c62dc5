export {
  createHealthChecker,
  type HealthChecker,
  type HealthOptions,
  type HealthStats,
} from './checker.ts';
export { createHttpRunner } from './http.ts';
export { servicesToReap } from './reaper.ts';
export { type CheckResult, type CheckRunner, DEFAULT_OUTPUT_MAX_SIZE, DEFAULT_TIMEOUT_MS } from './runner.ts';
export { IntervalScheduler, type JobFn, type SchedulerOptions } from './scheduler.ts';
export { createTcpRunner } from './tcp.ts';
export { StatusHandler } from './thresholds.ts';
export { TtlTimers, ttlExpiredOutput } from './ttl.ts';
