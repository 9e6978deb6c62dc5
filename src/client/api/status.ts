/** `/v1/status/*` (Consul docs, Status HTTP API): a cheap liveness probe of the registry. */
import type { Transport } from './transport.ts';

/** The status area of the typed client. */
export interface StatusApi {
  /** `GET /v1/status/leader`: `"host:port"` of the Raft leader ("" when there is none). */
  leader(signal?: AbortSignal): Promise<string>;
  /** `GET /v1/status/peers`. */
  peers(signal?: AbortSignal): Promise<string[]>;
}

/** Builds the status area over a transport. */
export function statusApi(t: Transport): StatusApi {
  return {
    leader: async (signal) => (await t.call<string>('/v1/status/leader', { signal })).value,
    peers: async (signal) => (await t.call<string[]>('/v1/status/peers', { signal })).value,
  };
}
