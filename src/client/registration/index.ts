export {
  type HttpCheckOptions,
  type RegisterServiceOptions,
  type Registration,
  registerService,
  type TtlCheckOptions,
} from './register.ts';
