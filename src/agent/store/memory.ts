import { phareError } from '../../api/index.ts';
import type { Store, StoreOp, StoreSnapshot, StoreTable } from './store.ts';

/**
 * An in-memory store for `--dev` and tests: nothing survives the process.
 *
 * @example
 * const store = createMemoryStore();
 */
export function createMemoryStore(): Store {
  const tables: Record<StoreTable, Map<string, unknown>> = {
    nodes: new Map(),
    services: new Map(),
    checks: new Map(),
    kv: new Map(),
    sessions: new Map(),
    acl: new Map(),
  };
  let index = 0;
  let closed = false;
  return {
    kind: 'memory',
    location: 'memory',
    async load(): Promise<StoreSnapshot> {
      return {
        index,
        nodes: [...tables.nodes.values()].map(clone),
        services: [...tables.services.values()].map(clone),
        checks: [...tables.checks.values()].map(clone),
        kv: [...tables.kv.values()].map(clone),
        sessions: [...tables.sessions.values()].map(clone),
        acl: [...tables.acl.values()].map(clone),
      };
    },
    async write(ops: readonly StoreOp[], idx: number): Promise<void> {
      if (closed) throw phareError('PHARE_ERR_STORE_CLOSED', 'store: write after close');
      for (const op of ops) {
        if (op.type === 'put') tables[op.table].set(op.key, clone(op.value));
        else tables[op.table].delete(op.key);
      }
      if (idx > index) index = idx;
    },
    async close(): Promise<void> {
      closed = true;
    },
  };
}

function clone<T>(v: T): T {
  return structuredClone(v);
}
