/**
 * Words and rules shared by the agent, the SDK and the health kit, so each has one home.
 */
import type { CheckStatus } from './types.ts';

/**
 * The header that carries a call's remaining deadline, in ms, from the SDK's service client to the callee
 * (the health kit reads it).
 *
 * @example
 * res.setHeader(DEADLINE_HEADER, '1500');
 */
export const DEADLINE_HEADER = 'x-phare-deadline-ms';

/**
 * The worst of several statuses (critical > warning > passing); passing when there are none — how Consul
 * aggregates a service's checks.
 *
 * @example
 * worstStatus(['passing', 'warning']); // 'warning'
 */
export function worstStatus(statuses: Iterable<CheckStatus>): CheckStatus {
  let worst: CheckStatus = 'passing';
  for (const s of statuses) {
    if (s === 'critical') return 'critical';
    if (s === 'warning') worst = 'warning';
  }
  return worst;
}
