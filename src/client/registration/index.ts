export {
  type HttpCheckSpec,
  type RegisterServiceOptions,
  type Registration,
  registerService,
  type TcpCheckSpec,
  type TtlCheckSpec,
} from './register.ts';
