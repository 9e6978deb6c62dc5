export { RetryBudget, type RetryBudgetOptions } from './budget.ts';
export { IDEMPOTENT, retryAfterMs } from './classify.ts';
export {
  type BreakerOptions,
  createServiceClient,
  DEADLINE_HEADER,
  type HedgeOptions,
  type RequestInfo,
  type RetryOptions,
  type ServiceClient,
  type ServiceClientHooks,
  type ServiceClientOptions,
  type ServiceRequestOptions,
  type ServiceResponse,
} from './client.ts';
export { decide, hedgeDelay } from './decide.ts';
