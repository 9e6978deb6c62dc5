/**
 * `fallback([a, b, …])`: the hybrid mode teams use while migrating (registry first, DNS or static config
 * when the registry does not know the service or cannot be reached). The answer is the first source, in
 * order, that currently has instances; with none, an empty answer if any source answered, else the error.
 */
import { phareError } from '../../api/index.ts';
import type { Resolver, ResolverListener, ResolverUpdate } from './types.ts';

/**
 * Combines resolvers in priority order.
 *
 * @example
 * const resolver = fallback([consulResolver(), staticResolver()]);
 */
export function fallback(resolvers: Resolver[]): Resolver {
  if (resolvers.length === 0)
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'fallback: expected at least one resolver');
  return {
    kind: `fallback(${resolvers.map((r) => r.kind).join(',')})`,
    async resolve(q, signal) {
      let firstError: unknown;
      let empty: ResolverUpdate | undefined;
      for (const r of resolvers) {
        try {
          const u = await r.resolve(q, signal);
          if (u.instances.length > 0) return u;
          empty ??= u;
        } catch (err) {
          firstError ??= err;
        }
      }
      if (empty) return empty;
      throw firstError;
    },
    watch(q, listener: ResolverListener) {
      const state: ({ ok: true; update: ResolverUpdate } | { ok: false; error: unknown } | undefined)[] =
        resolvers.map(() => undefined);
      const emit = () => {
        // Wait for the sources ranked above the first non-empty one, so a slow primary is not skipped.
        for (const s of state) {
          if (s === undefined) return;
          if (s.ok && s.update.instances.length > 0) {
            return listener.update(s.update);
          }
        }
        const answered = state.find((s) => s?.ok);
        if (answered?.ok) {
          return listener.update({
            instances: [],
            authoritative: state.every((s) => s?.ok && s.update.authoritative),
          });
        }
        const failed = state.find((s) => s && !s.ok);
        if (failed && !failed.ok) listener.error(failed.error);
      };
      const subs = resolvers.map((r, i) =>
        r.watch(q, {
          update: (u) => {
            state[i] = { ok: true, update: u };
            emit();
          },
          error: (err) => {
            state[i] = { ok: false, error: err };
            emit();
          },
        }),
      );
      return {
        stop: () => {
          for (const s of subs) s.stop();
        },
      };
    },
    async close() {
      await Promise.all(resolvers.map((r) => r.close?.()));
    },
  };
}
