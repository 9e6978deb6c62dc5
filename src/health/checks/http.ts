/**
 * HTTP dependency check with Consul's HTTP check semantics: 2xx passing, 429 warning, anything else
 * critical (developer.hashicorp.com/consul/docs/services/usage/checks#http-checks).
 */
import { phareError } from '../../api/index.ts';
import type { CheckOptions, CheckSpec } from '../types.ts';

/** Options of {@link httpCheck}. */
export interface HttpCheckOptions extends CheckOptions {
  /** @default "GET" */
  method?: string;
  /** @default {} */
  headers?: Record<string, string>;
}

/**
 * Checks an HTTP dependency (another service's `/health/ready`, a third-party API) with `fetch` (undici).
 *
 * @example
 * const health = createHealth({
 *   checks: { payments: httpCheck('http://127.0.0.1:4000/health/ready', { critical: false }) },
 * });
 */
export function httpCheck(url: string | URL, options: HttpCheckOptions = {}): CheckSpec {
  const { method = 'GET', headers = {}, ...rest } = options;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `httpCheck url: expected an absolute URL, got ${JSON.stringify(String(url))}`,
    );
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `httpCheck url: expected http: or https:, got ${target.protocol}`,
    );
  }
  return {
    ...rest,
    async run(signal) {
      const res = await fetch(target, { method, headers, signal, redirect: 'follow' });
      // Drain the body so the keep-alive connection is reused rather than leaked.
      await res.arrayBuffer().catch(() => undefined);
      const output = `${method} ${target.href}: HTTP ${res.status}`;
      if (res.status >= 200 && res.status < 300) return output;
      if (res.status === 429) return { status: 'warning', output };
      throw new Error(output);
    },
  };
}
