export {
  type HttpCheckOptions,
  type RegisterServiceOptions,
  type Registration,
  registerService,
  type TcpCheckOptions,
  type TtlCheckOptions,
} from './register.ts';
