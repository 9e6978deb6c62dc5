/**
 * `DeregisterCriticalServiceAfter` (Consul docs, Health checks): a service whose check has been critical longer
 * than the check's timeout (floored, Consul: 1 m) is removed with all its checks. Only checks of agent
 * services count; catalog-registered checks never reap.
 */
import type { Catalog, CheckRecord } from '../catalog/index.ts';

/**
 * The agent service IDs due for reaping now.
 *
 * @example
 * for (const id of servicesToReap(catalog, catalog.clock.now(), 60_000)) await catalog.deregisterService(id);
 */
export function servicesToReap(catalog: Catalog, now: number, minDeregisterAfterMs: number): string[] {
  const out = new Set<string>();
  for (const c of catalog.agentChecks()) {
    if (!isReapable(c, catalog)) continue;
    const timeout = Math.max(c.def.deregisterCriticalServiceAfterMs as number, minDeregisterAfterMs);
    // Consul: `cs.CriticalFor() > timeout` — strictly longer.
    if (now - (c.criticalSince as number) > timeout) out.add(c.serviceId);
  }
  return [...out];
}

function isReapable(c: CheckRecord, catalog: Catalog): boolean {
  return (
    c.agent &&
    c.node === catalog.local.name &&
    c.serviceId !== '' &&
    c.status === 'critical' &&
    c.criticalSince !== undefined &&
    (c.def.deregisterCriticalServiceAfterMs ?? 0) > 0 &&
    catalog.agentService(c.serviceId) !== undefined
  );
}
