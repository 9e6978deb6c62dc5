/**
 * The one authorization question every adapter asks (the "authorize" step of docs/architecture.md, Writes): may
 * this token read/write this resource? Consul's evaluation (developer.hashicorp.com/consul/docs/security/acl/acl-rules):
 * an exact rule for the name wins; else the longest matching prefix; else the agent's default policy. Write
 * implies read. The default `allow` grants everything except ACL management (Consul's `allowAll` authorizer
 * has `allowManage: false`); a management token grants everything.
 */
import { phareError } from '../../api/index.ts';
import {
  GLOBAL_RESOURCES,
  type GlobalResource,
  type Level,
  type Rules,
  type SegmentResource,
  type SegmentRules,
} from './rules.ts';

/** What a request needs. */
export type Need = 'read' | 'write' | 'list';
/** Anything a rule can name. */
export type Resource = SegmentResource | GlobalResource;

/** Consul's fixed accessor of the anonymous token (structs.ACLTokenAnonymousID). */
export const ANONYMOUS_ACCESSOR = '00000000-0000-0000-0000-000000000002';

/** A resolved token: answers {@link Authorizer.allows} for every check of one request. */
export interface Authorizer {
  /** The token's AccessorID (named in 403 texts, never the secret). */
  readonly accessorId: string;
  /** The anonymous token (no token, or none the agent knows of: `X-Consul-Results-Filtered-By-ACLs` stays off). */
  readonly anonymous: boolean;
  /** Every check passes (ACLs off, or a management token): reads skip filtering. */
  readonly allowAll: boolean;
  /** Tells answers apart in the read cache: equal ids filter equally. */
  readonly cacheId: string;
  /** May the token `need` on `resource` `name` (`''` for acl/operator)? */
  allows(resource: Resource, name: string, need: Need): boolean;
  /** Throws PHARE_ERR_PERMISSION_DENIED (403, Consul's text) unless {@link allows}. */
  require(resource: Resource, name: string, need: Need): void;
}

/** Names remembered per resource and need by one {@link RulesAuthorizer}. */
const MEMO_MAX = 10_000;

function grants(level: Level | undefined, need: Need): boolean | undefined {
  if (level === undefined) return undefined;
  if (level === 'deny') return false;
  if (level === 'write') return true;
  if (level === 'list') return need !== 'write';
  return need === 'read';
}

function segmentLevel(rules: SegmentRules, name: string): Level | undefined {
  const exact = rules.exact.get(name);
  if (exact !== undefined) return exact;
  let best: Level | undefined;
  let bestLen = -1;
  for (const [prefix, level] of rules.prefix) {
    if (prefix.length > bestLen && name.startsWith(prefix)) {
      best = level;
      bestLen = prefix.length;
    }
  }
  return best;
}

/**
 * Consul's 403 text (acl.PermissionDeniedError): `Permission denied: token with AccessorID '…' lacks
 * permission 'service:write' on "web"`; clients match the `Permission denied` prefix.
 */
export function permissionDenied(accessorId: string, resource: Resource, name: string, need: Need): Error {
  const on = (GLOBAL_RESOURCES as readonly string[]).includes(resource) ? '' : ` on ${JSON.stringify(name)}`;
  return phareError(
    'PHARE_ERR_PERMISSION_DENIED',
    `Permission denied: token with AccessorID '${accessorId}' lacks permission '${resource}:${need}'${on}`,
  );
}

abstract class Base implements Authorizer {
  abstract readonly accessorId: string;
  abstract readonly anonymous: boolean;
  abstract readonly allowAll: boolean;
  abstract readonly cacheId: string;
  abstract allows(resource: Resource, name: string, need: Need): boolean;
  require(resource: Resource, name: string, need: Need): void {
    if (!this.allows(resource, name, need)) throw permissionDenied(this.accessorId, resource, name, need);
  }
}

/** Everything allowed: ACLs off, or a management token. */
export class AllowAll extends Base {
  readonly allowAll = true;
  readonly cacheId = '';
  readonly accessorId: string;
  readonly anonymous: boolean;
  constructor(accessorId = ANONYMOUS_ACCESSOR, anonymous = true) {
    super();
    this.accessorId = accessorId;
    this.anonymous = anonymous;
  }
  allows(): boolean {
    return true;
  }
}

/** A token's merged rules over the agent's default policy. */
export class RulesAuthorizer extends Base {
  readonly allowAll = false;
  readonly accessorId: string;
  readonly anonymous: boolean;
  readonly cacheId: string;
  readonly #rules: Rules;
  readonly #defaultAllow: boolean;
  /**
   * Decisions already made, per `resource:need` then name: filtering a list asks the same few names again
   * and again (every instance's node and service). An authorizer lives for one ACL generation (a token or
   * policy change makes a new one), so these never go stale; bounded by {@link MEMO_MAX} names each.
   */
  readonly #memo: Record<Need, Map<Resource, Map<string, boolean>>> = {
    read: new Map(),
    write: new Map(),
    list: new Map(),
  };

  constructor(options: {
    accessorId: string;
    rules: Rules;
    defaultPolicy: 'allow' | 'deny';
    /** Changes whenever any token or policy does (the cache must not serve another generation's filtering). */
    generation: number;
  }) {
    super();
    this.accessorId = options.accessorId;
    this.anonymous = options.accessorId === ANONYMOUS_ACCESSOR;
    this.#rules = options.rules;
    this.#defaultAllow = options.defaultPolicy === 'allow';
    this.cacheId = `${options.accessorId}@${options.generation}`;
  }

  allows(resource: Resource, name: string, need: Need): boolean {
    const byResource = this.#memo[need];
    let memo = byResource.get(resource);
    if (memo === undefined) {
      memo = new Map();
      byResource.set(resource, memo);
    }
    const known = memo.get(name);
    if (known !== undefined) return known;
    const ok = this.#decide(resource, name, need);
    if (memo.size >= MEMO_MAX) memo.clear();
    memo.set(name, ok);
    return ok;
  }

  #decide(resource: Resource, name: string, need: Need): boolean {
    const seg = (this.#rules.segments as Record<string, SegmentRules | undefined>)[resource];
    const level = seg ? segmentLevel(seg, name) : this.#rules.global[resource as GlobalResource];
    const g = grants(level, need);
    if (g !== undefined) return g;
    // the default policy: allow grants all but ACL management (Consul's allowAll: allowManage false)
    return this.#defaultAllow && resource !== 'acl';
  }

  /** Whether any rule (or the default) lets this token read some name of `resource` (the DNS warning). */
  mayReadAny(resource: SegmentResource): boolean {
    if (this.#defaultAllow) {
      const seg = this.#rules.segments[resource];
      // only a deny on every name (prefix "") takes it all away
      return (
        seg.prefix.get('') !== 'deny' ||
        [...seg.exact.values(), ...seg.prefix.values()].some((l) => l !== 'deny')
      );
    }
    const seg = this.#rules.segments[resource];
    return [...seg.exact.values(), ...seg.prefix.values()].some((l) => l !== 'deny');
  }
}
