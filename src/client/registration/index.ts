export {
  type HttpCheckOptions,
  type RegisterServiceOptions,
  type Registration,
  registerService,
  type TtlCheckOptions,
} from './register.ts';
export { type GracefulShutdownOptions, gracefulShutdown, type ShutdownController } from './shutdown.ts';
