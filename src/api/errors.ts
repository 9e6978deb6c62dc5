/**
 * The one table of Phare error codes. Users match on `err.code`; codes are never reused.
 * `docs/errors.md` lists the same table; a test keeps the two in step.
 */

/** Every error code Phare throws, with its HTTP status and what it means. */
export const ERRORS = {
  PHARE_ERR_INVALID_ARGUMENT: { status: 400, summary: 'An option, flag or request field has a bad value.' },
  PHARE_ERR_INVALID_CONFIG: {
    status: 400,
    summary: 'A configuration file or environment variable is invalid.',
  },
  PHARE_ERR_NOT_FOUND: {
    status: 404,
    summary: 'The named service, check, node, or ACL token, policy or role does not exist.',
  },
  PHARE_ERR_STORE: { status: 500, summary: 'The store could not read or durably write state.' },
  PHARE_ERR_STORE_CLOSED: { status: 503, summary: 'The store was closed (the agent is shutting down).' },
  PHARE_ERR_STORE_DAMAGED: {
    status: 500,
    summary: 'The data dir holds damaged, vanished or foreign data; the agent refuses to start (exit 2).',
  },
  PHARE_ERR_NO_LEADER: {
    status: 500,
    summary: 'The etcd cluster has no leader (quorum lost): writes fail, reads serve the cache.',
  },
  PHARE_ERR_AGENT_UNREACHABLE: { status: 503, summary: 'The registry agent did not answer.' },
  PHARE_ERR_AGENT_RESPONSE: { status: 502, summary: 'The registry agent answered with an error status.' },
  PHARE_ERR_FILTER_SYNTAX: { status: 400, summary: 'A ?filter= expression could not be parsed.' },
  PHARE_ERR_LOCKED: {
    status: 409,
    summary:
      'Another process holds the lock (a concurrent `phare ports sync`, or an agent on the same data dir).',
  },
  PHARE_ERR_FILE_WRITE: { status: 500, summary: 'A file could not be written; nothing was changed.' },
  PHARE_ERR_SERVICE_NOT_FOUND: { status: 503, summary: 'Discovery knows no instance of the named service.' },
  PHARE_ERR_NO_HEALTHY_INSTANCE: {
    status: 503,
    summary: 'The service has instances, but none is healthy or available.',
  },
  PHARE_ERR_DEADLINE_EXCEEDED: { status: 504, summary: 'The call did not finish within its deadline.' },
  PHARE_ERR_RETRY_BUDGET_EXHAUSTED: {
    status: 503,
    summary: 'A retry was needed but the retry budget is spent.',
  },
  PHARE_ERR_UPSTREAM: { status: 502, summary: 'The service answered with a retryable failure on every try.' },
  PHARE_ERR_INFRA_UNHEALTHY: {
    status: 503,
    summary: "A component's test infrastructure (its compose services) did not start or become healthy.",
  },
  PHARE_ERR_DOCKER: {
    status: 502,
    summary: 'The Docker engine or Compose failed a command (or is not installed).',
  },
  PHARE_ERR_CIRCUIT_OPEN: {
    status: 503,
    summary: 'Every instance of the service has an open circuit breaker.',
  },
  PHARE_ERR_PERMISSION_DENIED: {
    status: 403,
    summary:
      "The request's ACL token lacks a permission (Consul's `Permission denied: token with AccessorID '…' lacks permission 'service:write' on \"web\"`).",
  },
  PHARE_ERR_ACL_NOT_FOUND: {
    status: 403,
    summary: 'The request named an ACL token (or token accessor) the agent does not know (`ACL not found`).',
  },
  PHARE_ERR_ACL_DISABLED: {
    status: 401,
    summary: 'An /v1/acl endpoint was called on an agent without --acl-enabled (`ACL support disabled`).',
  },
  PHARE_ERR_ACL_BOOTSTRAPPED: {
    status: 403,
    summary:
      'PUT /v1/acl/bootstrap after the ACL system was bootstrapped (or given an initial management token).',
  },
} as const;

/** A code from the error table. */
export type PhareErrorCode = keyof typeof ERRORS;

/**
 * The error class behind every code in {@link ERRORS}.
 *
 * @example
 * try { await client.agent.self(); }
 * catch (err) { if (err instanceof PhareError && err.code === 'PHARE_ERR_AGENT_UNREACHABLE') retryLater(); }
 */
export class PhareError extends Error {
  readonly code: PhareErrorCode;
  /** HTTP status the agent answers with when this error reaches a request. */
  readonly status: number;

  constructor(code: PhareErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PhareError';
    this.code = code;
    this.status = options?.status ?? ERRORS[code].status;
  }
}

/**
 * Makes a {@link PhareError}. Messages say what failed and what to do: `--http-addr: "x" is not host:port`.
 *
 * @example
 * throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'health.timeoutMs: expected a positive number, got -1');
 */
export function phareError(
  code: PhareErrorCode,
  message: string,
  options?: { cause?: unknown; status?: number },
): PhareError {
  return new PhareError(code, message, options);
}
