export {
  type CheckerOptions,
  createHealthChecker,
  type HealthChecker,
  type HealthStats,
} from './checker.ts';
export { createHttpProber } from './http.ts';
export { DEFAULT_CHECK_UPDATE_INTERVAL_MS, OutputSync, type OutputSyncOptions } from './output-sync.ts';
export { DEFAULT_OUTPUT_MAX_SIZE, DEFAULT_TIMEOUT_MS, type ProbeResult, type Prober } from './probe.ts';
export { servicesToReap } from './reaper.ts';
export { IntervalScheduler, type JobFn, type SchedulerOptions } from './scheduler.ts';
export { createTcpProber } from './tcp.ts';
export { StatusHandler } from './thresholds.ts';
export { TtlTimers, ttlExpiredOutput } from './ttl.ts';
