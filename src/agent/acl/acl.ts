/**
 * ACL state: tokens and policies in the store's `acl` table, and the resolution of a request's secret to an
 * {@link Authorizer} (Consul's model, developer.hashicorp.com/consul/docs/security/acl).
 *
 * Secrets are never stored: a token row keeps the SHA-256 of its SecretID, a request's secret is hashed and
 * compared in constant time, and reads of a token answer `SecretID: "<hidden>"` (Consul's redaction text)
 * except where the caller already holds the secret (creation, bootstrap, token/self).
 *
 * The write rule (docs/architecture.md, "Writes") holds here too: a change is visible only once durable; a failed write
 * changes nothing. With a local store (memory, sqlite) writes are serialized here, committed, then applied.
 * With a shared store (etcd) this state is a cache fed by the store's watch — a token created on one agent
 * works on every other — and a write answers once the watch delivered its own revision. Bootstrap is a
 * create-if-absent of one row, so two agents racing to bootstrap cannot both win.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { formatDuration, phareError } from '../../api/index.ts';
import type { Clock, ClockTimer } from '../clock.ts';
import { systemClock } from '../clock.ts';
import {
  isSharedStore,
  type SharedStore,
  type SharedStoreOp,
  type Store,
  type StoreEvent,
  type StoreGuard,
  type StoreOp,
  type StoreWatch,
} from '../store/index.ts';
import { AllowAll, ANONYMOUS_ACCESSOR, type Authorizer, RulesAuthorizer } from './authorizer.ts';
import { emptyRules, mergeRules, parseRules, type Rules, RulesError } from './rules.ts';

/** Consul's built-in management policy (structs.ACLPolicyGlobalManagementID). */
export const GLOBAL_MANAGEMENT_ID = '00000000-0000-0000-0000-000000000001';
export const GLOBAL_MANAGEMENT_NAME = 'global-management';
/** The SecretID Consul gives the anonymous token. */
export const ANONYMOUS_SECRET = 'anonymous';
/** What a token read shows instead of a secret (Consul's structs.RedactedToken). */
export const REDACTED_SECRET = '<hidden>';

/** A token as stored: the secret only as its SHA-256. */
export interface TokenRecord {
  kind: 'token';
  accessorId: string;
  secretHash: string;
  description: string;
  /** Policy IDs. */
  policies: string[];
  /** Role IDs (rows written before roles existed have none). */
  roles?: string[];
  serviceIdentities: { ServiceName: string; Datacenters?: string[] }[];
  nodeIdentities: { NodeName: string; Datacenter: string }[];
  local: boolean;
  /** RFC 3339. */
  createTime: string;
  /**
   * RFC 3339; past it the token is `ACL not found` everywhere and is reaped (Consul's ExpirationTime,
   * set directly or as CreateTime + ExpirationTTL). @default none (never expires)
   */
  expirationTime?: string;
  createIndex: number;
  modifyIndex: number;
}

/** A policy as stored. */
export interface PolicyRecord {
  kind: 'policy';
  id: string;
  name: string;
  description: string;
  rules: string;
  datacenters: string[];
  createIndex: number;
  modifyIndex: number;
}

/**
 * A role as stored (Consul's ACL roles, developer.hashicorp.com/consul/docs/security/acl/acl-roles): a named
 * set of policies and identities that tokens link to; a change to the role changes every linked token.
 */
export interface RoleRecord {
  kind: 'role';
  id: string;
  name: string;
  description: string;
  /** Policy IDs. */
  policies: string[];
  serviceIdentities: { ServiceName: string; Datacenters?: string[] }[];
  nodeIdentities: { NodeName: string; Datacenter: string }[];
  createIndex: number;
  modifyIndex: number;
}

/** What a role create/update asks for. */
export interface RoleInput {
  name?: string;
  description?: string;
  policies?: { id?: string; name?: string }[];
  serviceIdentities?: { ServiceName: string; Datacenters?: string[] }[];
  nodeIdentities?: { NodeName: string; Datacenter: string }[];
}

/** The row that says the ACL system was bootstrapped, and at which index (Consul's "reset index"). */
interface BootstrapRecord {
  kind: 'bootstrap';
  index: number;
}

type AclRow = TokenRecord | PolicyRecord | RoleRecord | BootstrapRecord;

/**
 * The agent's own tokens that Phare uses (Consul's `acl.tokens`): `default` answers requests that name no
 * token (instead of the anonymous token) and DNS when no DNS token is set; `dns` answers DNS; `agent` is
 * the token of the agent's own operations — Phare's agent writes its own entries without an ACL check,
 * so it is kept (and persisted) for the tools that set it but authorizes nothing.
 */
export type AgentTokenKind = 'default' | 'agent' | 'dns';

/** The names `PUT /v1/agent/token/<name>` takes for each kind (Consul's, with their legacy aliases). */
export const AGENT_TOKEN_NAMES: Readonly<Record<string, AgentTokenKind>> = {
  default: 'default',
  acl_token: 'default',
  agent: 'agent',
  acl_agent_token: 'agent',
  dns: 'dns',
  dns_token: 'dns',
};

/** What a token create/update asks for (already decoded from Consul's body). */
export interface TokenInput {
  accessorId?: string;
  secretId?: string;
  description?: string;
  /** Links by ID or name, as Consul's `Policies: [{ID}|{Name}]`. */
  policies?: { id?: string; name?: string }[];
  /** Role links by ID or name (`Roles: [{ID}|{Name}]`). */
  roles?: { id?: string; name?: string }[];
  serviceIdentities?: { ServiceName: string; Datacenters?: string[] }[];
  nodeIdentities?: { NodeName: string; Datacenter: string }[];
  local?: boolean;
  /** `ExpirationTime` (RFC 3339). */
  expirationTime?: string;
  /** `ExpirationTTL` in ms (0: none, as Consul). */
  expirationTtlMs?: number;
}

/** What a policy create/update asks for. */
export interface PolicyInput {
  name?: string;
  description?: string;
  rules?: string;
  datacenters?: string[];
}

/** Options of {@link Acl.open}. */
export interface AclOptions {
  store: Store;
  /** `--acl-enabled`. @default false */
  enabled?: boolean;
  /** `--acl-default-policy`. @default 'allow' */
  defaultPolicy?: 'allow' | 'deny';
  /** `--acl-initial-management-token`: a management token with this secret exists from the first start. */
  initialManagementToken?: string | undefined;
  /** `--acl-dns-token`: the token DNS answers with. @default the anonymous token */
  dnsToken?: string | undefined;
  /**
   * `--acl-enable-token-persistence`: where the agent's own tokens set through `PUT /v1/agent/token/<kind>`
   * are kept across restarts (the agent passes `<data-dir>/acl-tokens.json`), as SHA-256 only. Kept there,
   * they win over the configured ones at start, as in Consul. @default not kept (lost on restart)
   */
  tokenFile?: string | undefined;
  /**
   * Bounds of a token's ExpirationTTL / ExpirationTime from its creation (Consul's
   * acl.token_min_expiration_ttl / token_max_expiration_ttl). @default { minMs: 60_000, maxMs: 86_400_000 }
   */
  tokenExpiry?: { minMs: number; maxMs: number };
  /** The lowest index to start from (the agent passes the catalog's). @default 1 */
  minIndex?: number;
  /** @default systemClock */
  clock?: Clock;
  logger?: Logger;
}

/** Verified secrets kept by {@link Acl.resolve}; past it the oldest is dropped. */
const RESOLVED_MAX = 4096;

const key = {
  token: (accessor: string) => `token:${accessor}`,
  policy: (id: string) => `policy:${id}`,
  role: (id: string) => `role:${id}`,
  bootstrap: 'bootstrap',
};

/** SHA-256 of a secret, hex. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A UUID derived from a secret's hash: every agent configured with the same initial token makes the same row. */
function accessorFromHash(hash: string): string {
  const h = hash.slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Consul's policy name rule (acl.validPolicyName). */
const POLICY_NAME = /^[A-Za-z0-9\-_]{1,128}$/;

function invalid(message: string): Error {
  return phareError('PHARE_ERR_INVALID_ARGUMENT', message);
}

/**
 * Tokens, policies and their resolution.
 *
 * @example
 * const acl = await Acl.open({ store, enabled: true, defaultPolicy: 'deny' });
 * const authz = acl.resolve(req.headers['x-consul-token']);
 * authz.require('service', 'web', 'write'); // throws PHARE_ERR_PERMISSION_DENIED
 */
export class Acl {
  readonly enabled: boolean;
  readonly defaultPolicy: 'allow' | 'deny';
  readonly #store: Store;
  readonly #shared: SharedStore | undefined;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #dnsToken: string | undefined;
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #bySecret = new Map<string, TokenRecord>();
  readonly #policies = new Map<string, PolicyRecord>();
  readonly #roles = new Map<string, RoleRecord>();
  readonly #compiled = new Map<string, Rules>();
  readonly #authorizers = new Map<string, Authorizer>();
  /**
   * Secrets already verified (hashed and compared in constant time once) → their authorizer, so a token that
   * comes back on every request costs one Map lookup instead of a SHA-256, two hex decodes and a compare
   * (BENCHMARKS.md, issue 14: that was most of the token-checked read's cost). Only secrets that resolved
   * are kept (an unknown secret is hashed every time, so guessing cannot fill it), bounded by
   * {@link RESOLVED_MAX}, and emptied on every token or policy change ({@link #changed}).
   */
  readonly #resolved = new Map<string, { authz: Authorizer; until: number }>();
  readonly #expiry: { minMs: number; maxMs: number };
  #reapTimer: ClockTimer | undefined;
  #reapAt = Number.POSITIVE_INFINITY;
  /** The agent's own tokens, as SHA-256 of their secrets (see {@link AgentTokenKind}). */
  readonly #agentTokens = new Map<AgentTokenKind, string>();
  readonly #tokenFile: string | undefined;
  #agentTokenChain: Promise<unknown> = Promise.resolve();
  #bootstrap: BootstrapRecord | undefined;
  #index: number;
  /** Bumped on every applied change: cached authorizers and filtered read bodies of older ones are stale. */
  #generation = 0;
  #chain: Promise<unknown> = Promise.resolve();
  #watch: StoreWatch | undefined;
  #applied = 0;
  readonly #appliedWaiters = new Set<{ index: number; resolve: () => void }>();
  readonly #allowAll = new AllowAll();
  #closed = false;

  private constructor(options: AclOptions, index: number) {
    this.#store = options.store;
    this.#shared = isSharedStore(options.store) ? options.store : undefined;
    this.enabled = options.enabled ?? false;
    this.defaultPolicy = options.defaultPolicy ?? 'allow';
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger;
    this.#dnsToken = options.dnsToken;
    this.#tokenFile = options.tokenFile;
    this.#expiry = options.tokenExpiry ?? { minMs: 60_000, maxMs: 86_400_000 };
    this.#index = index;
    if (options.dnsToken) this.#agentTokens.set('dns', hashSecret(options.dnsToken));
    if (this.#tokenFile) for (const [k, h] of readTokenFile(this.#tokenFile)) this.#agentTokens.set(k, h);
  }

  /** Loads tokens and policies; with `initialManagementToken`, makes sure that token exists. */
  static async open(options: AclOptions): Promise<Acl> {
    let acl: Acl;
    if (isSharedStore(options.store)) {
      // the ACL space only: its watch never carries the catalog's traffic
      const { index, rows } = await options.store.loadSpace('acl');
      acl = new Acl(options, Math.max(1, index));
      acl.#applied = index;
      for (const r of rows) {
        if (r.table !== 'acl') continue;
        acl.#applyRow(r.key, withIndexes(r.value as AclRow, r.createIndex, r.modifyIndex));
      }
      acl.#watch = options.store.watch(index, (e) => acl.#onEvent(e), 'acl');
      acl.#watch.prime(rows);
    } else {
      const snap = await options.store.load({
        check: (t, v) => (t === 'acl' ? aclRowProblem(v) : undefined),
      });
      acl = new Acl(options, Math.max(1, snap.index, options.minIndex ?? 1));
      for (const v of snap.acl as AclRow[]) acl.#applyRow(keyOf(v), v);
    }
    acl.#generation++;
    if (options.initialManagementToken) await acl.#ensureInitialManagement(options.initialManagementToken);
    acl.#scheduleReap();
    return acl;
  }

  // ---------------------------------------------------------------- resolution

  /**
   * The authorizer of a request's secret. With ACLs off, allow-all. No secret: the anonymous token. A
   * secret the agent does not know: PHARE_ERR_ACL_NOT_FOUND (Consul's 403 `ACL not found`).
   */
  resolve(secret: string | undefined): Authorizer {
    if (!this.enabled) return this.#allowAll;
    if (secret === undefined || secret === '') {
      // no token named: the agent's default token if one is set (Consul's acl.tokens.default), else anonymous
      const d = this.#agentTokens.get('default');
      return d === undefined ? this.#authorizerOf(this.#anonymous()) : this.#resolveHash(d);
    }
    if (secret === ANONYMOUS_SECRET) return this.#authorizerOf(this.#anonymous());
    // A lookup keyed by the secret itself: V8 compares the strings only when their hashes collide, and
    // only secrets that already proved valid are in it, so it tells a guesser nothing the 403 does not.
    const known = this.#resolved.get(secret);
    if (known && (known.until === Number.POSITIVE_INFINITY || this.#clock.now() < known.until))
      return known.authz;
    const hash = hashSecret(secret);
    const token = this.#bySecret.get(hash);
    if (
      !token ||
      !timingSafeEqual(Buffer.from(token.secretHash, 'hex'), Buffer.from(hash, 'hex')) ||
      this.#expired(token)
    )
      throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
    const a = this.#authorizerOf(token);
    if (this.#resolved.size >= RESOLVED_MAX)
      this.#resolved.delete(this.#resolved.keys().next().value as string);
    this.#resolved.set(secret, { authz: a, until: expiresAt(token) });
    return a;
  }

  /** An agent token's authorizer, by the hash kept for it; PHARE_ERR_ACL_NOT_FOUND when no token has it. */
  #resolveHash(hash: string): Authorizer {
    const token = this.#bySecret.get(hash);
    if (!token || this.#expired(token)) throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
    return this.#authorizerOf(token);
  }

  /**
   * The token DNS answers with: the DNS token (`PUT /v1/agent/token/dns`, else `--acl-dns-token`), else
   * the default token, else anonymous — Consul's order. One no token has grants nothing.
   */
  dnsAuthorizer(): Authorizer {
    if (!this.enabled) return this.#allowAll;
    const hash = this.#agentTokens.get('dns') ?? this.#agentTokens.get('default');
    try {
      return hash === undefined ? this.#authorizerOf(this.#anonymous()) : this.#resolveHash(hash);
    } catch {
      return new RulesAuthorizer({
        accessorId: ANONYMOUS_ACCESSOR,
        rules: emptyRules(),
        defaultPolicy: 'deny',
        generation: this.#generation,
      });
    }
  }

  /**
   * What the agent should say at start when DNS would answer nothing: default deny and a DNS token that can
   * read no service or no node (the most common Consul ACL complaint, consul #10723, #3015). Undefined when fine.
   */
  dnsWarning(): string | undefined {
    if (!this.enabled) return undefined;
    const a = this.dnsAuthorizer();
    if (!(a instanceof RulesAuthorizer)) return undefined;
    const missing = (['service', 'node'] as const).filter((r) => !a.mayReadAny(r));
    if (missing.length === 0) return undefined;
    const who = this.#agentTokens.has('dns')
      ? this.#dnsToken
        ? 'the --acl-dns-token'
        : 'the DNS token'
      : this.#agentTokens.has('default')
        ? 'the default token'
        : 'the anonymous token';
    return (
      `DNS answers with ${who}, which may read no ${missing.join(' and no ')} under --acl-default-policy ` +
      `${this.defaultPolicy}: every DNS lookup of a service or node answers NXDOMAIN. Give ${who} a policy with ` +
      `service_prefix "" { policy = "read" } and node_prefix "" { policy = "read" } (docs/security.md#dns-and-acls)`
    );
  }

  /** Past its ExpirationTime (Consul: an expired token is not found, even before it is reaped). */
  #expired(t: TokenRecord): boolean {
    return this.#clock.now() >= expiresAt(t);
  }

  #anonymous(): TokenRecord {
    return (
      this.#tokens.get(ANONYMOUS_ACCESSOR) ?? {
        kind: 'token',
        accessorId: ANONYMOUS_ACCESSOR,
        secretHash: hashSecret(ANONYMOUS_SECRET),
        description: 'Anonymous Token',
        policies: [],
        serviceIdentities: [],
        nodeIdentities: [],
        local: false,
        createTime: new Date(0).toISOString(),
        createIndex: 1,
        modifyIndex: 1,
      }
    );
  }

  #authorizerOf(token: TokenRecord): Authorizer {
    const cached = this.#authorizers.get(token.accessorId);
    if (cached) return cached;
    let a: Authorizer;
    // a token's rights: its own policies and identities, and those of every role it links (a role deleted
    // since is skipped, as Consul resolves links lazily)
    const roles = (token.roles ?? []).flatMap((id) => this.#roles.get(id) ?? []);
    const policyIds = [...token.policies, ...roles.flatMap((r) => r.policies)];
    if (policyIds.includes(GLOBAL_MANAGEMENT_ID)) {
      a = new AllowAll(token.accessorId, false);
    } else {
      const rules = emptyRules();
      for (const id of policyIds) {
        const compiled = this.#compiled.get(id);
        if (compiled) mergeRules(rules, compiled);
      }
      const serviceIdentities = [...token.serviceIdentities, ...roles.flatMap((r) => r.serviceIdentities)];
      const nodeIdentities = [...token.nodeIdentities, ...roles.flatMap((r) => r.nodeIdentities)];
      for (const si of serviceIdentities) mergeRules(rules, serviceIdentityRules(si.ServiceName));
      for (const ni of nodeIdentities) mergeRules(rules, nodeIdentityRules(ni.NodeName));
      a = new RulesAuthorizer({
        accessorId: token.accessorId,
        rules,
        defaultPolicy: this.defaultPolicy,
        generation: this.#generation,
      });
    }
    this.#authorizers.set(token.accessorId, a);
    return a;
  }

  // ---------------------------------------------------------------- reads

  /** The ACL table's index (the X-Consul-Index of ACL reads). */
  get index(): number {
    return this.#index;
  }

  token(accessorId: string): TokenRecord | undefined {
    if (accessorId === ANONYMOUS_ACCESSOR) return this.#anonymous();
    const t = this.#tokens.get(accessorId);
    return t && !this.#expired(t) ? t : undefined;
  }

  /** The token a secret names (token/self). */
  tokenBySecret(secret: string | undefined): TokenRecord {
    if (secret === undefined || secret === '') {
      const d = this.#agentTokens.get('default');
      if (d === undefined) return this.#anonymous();
      const t = this.#bySecret.get(d);
      if (!t || this.#expired(t)) throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
      return t;
    }
    if (secret === ANONYMOUS_SECRET) return this.#anonymous();
    const t = this.#bySecret.get(hashSecret(secret));
    if (!t || this.#expired(t)) throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
    return t;
  }

  tokens(): TokenRecord[] {
    const out = [...this.#tokens.values()].filter((t) => !this.#expired(t));
    if (!this.#tokens.has(ANONYMOUS_ACCESSOR)) out.push(this.#anonymous());
    return out.sort((a, b) => a.createIndex - b.createIndex || cmp(a.accessorId, b.accessorId));
  }

  policy(id: string): PolicyRecord | undefined {
    return id === GLOBAL_MANAGEMENT_ID ? globalManagement() : this.#policies.get(id);
  }

  policyByName(name: string): PolicyRecord | undefined {
    if (name === GLOBAL_MANAGEMENT_NAME) return globalManagement();
    for (const p of this.#policies.values()) if (p.name === name) return p;
    return undefined;
  }

  policies(): PolicyRecord[] {
    return [globalManagement(), ...[...this.#policies.values()].sort((a, b) => cmp(a.name, b.name))];
  }

  role(id: string): RoleRecord | undefined {
    return this.#roles.get(id);
  }

  roleByName(name: string): RoleRecord | undefined {
    for (const r of this.#roles.values()) if (r.name === name) return r;
    return undefined;
  }

  roles(): RoleRecord[] {
    return [...this.#roles.values()].sort((a, b) => cmp(a.name, b.name));
  }

  /** Whether `PUT /v1/acl/bootstrap` already happened, and its index (Consul's reset index). */
  bootstrapIndex(): number | undefined {
    return this.#bootstrap?.index;
  }

  // ---------------------------------------------------------------- writes

  /**
   * `PUT /v1/agent/token/<kind>`: sets (or with `''` clears) one of the agent's own tokens. With a token
   * file (`--acl-enable-token-persistence`) the file is written (atomically, fsynced, mode 0600, hashes
   * only) before the token takes effect, so an acknowledged change survives a restart; a failed write
   * changes nothing.
   */
  setAgentToken(kind: AgentTokenKind, secret: string): Promise<void> {
    const run = this.#agentTokenChain.then(() => {
      const next = new Map(this.#agentTokens);
      if (secret === '') next.delete(kind);
      else next.set(kind, hashSecret(secret));
      if (this.#tokenFile) writeTokenFile(this.#tokenFile, next);
      this.#agentTokens.clear();
      for (const [k, h] of next) this.#agentTokens.set(k, h);
      this.#log?.info({ token: kind }, "acl: updated the agent's ACL token");
    });
    this.#agentTokenChain = run.catch(() => {});
    return run;
  }

  /** Whether one of the agent's own tokens is set (its secret is never kept). */
  hasAgentToken(kind: AgentTokenKind): boolean {
    return this.#agentTokens.has(kind);
  }

  /**
   * `PUT /v1/acl/bootstrap`: once per cluster, a management token. Later calls fail with Consul's
   * `ACL bootstrap no longer allowed (reset index: N)` (PHARE_ERR_ACL_BOOTSTRAPPED, a 403).
   */
  bootstrap(): Promise<{ token: TokenRecord; secretId: string }> {
    return this.#serial(async () => {
      const done = () =>
        phareError(
          'PHARE_ERR_ACL_BOOTSTRAPPED',
          `Permission denied: ACL bootstrap no longer allowed (reset index: ${this.#bootstrap?.index ?? this.#index})`,
        );
      if (this.#bootstrap) throw done();
      const secretId = randomUUID();
      const token = this.#newToken({
        accessorId: randomUUID(),
        secretHash: hashSecret(secretId),
        description: 'Bootstrap Token (Global Management)',
        policies: [GLOBAL_MANAGEMENT_ID],
      });
      const ok = await this.#commit(
        [
          { type: 'put', table: 'acl', key: key.bootstrap, value: { kind: 'bootstrap', index: 0 } },
          { type: 'put', table: 'acl', key: key.token(token.accessorId), value: token },
        ],
        // shared store: only if no bootstrap row exists, checked inside etcd's transaction (two agents racing)
        [{ table: 'acl', key: key.bootstrap, modifyIndex: 0 }],
      );
      if (!ok) throw done();
      return { token: this.#tokens.get(token.accessorId) ?? token, secretId };
    });
  }

  /** Creates a token; resolves with it and its SecretID (generated unless given). */
  createToken(input: TokenInput): Promise<{ token: TokenRecord; secretId: string }> {
    return this.#serial(async () => {
      const accessorId = (input.accessorId ?? '') || randomUUID();
      const secretId = (input.secretId ?? '') || randomUUID();
      if (!UUID.test(accessorId)) throw invalid('Invalid Token: AccessorID is not a valid UUID');
      if (!UUID.test(secretId)) throw invalid('Invalid Token: SecretID is not a valid UUID');
      if (this.#tokens.has(accessorId) || accessorId === ANONYMOUS_ACCESSOR)
        throw invalid('Invalid Token: AccessorID is already in use');
      const secretHash = hashSecret(secretId);
      if (this.#bySecret.has(secretHash) || secretId === ANONYMOUS_SECRET)
        throw invalid('Invalid Token: SecretID is already in use');
      const expirationTime = this.#expirationOf(input);
      const token = this.#newToken({
        accessorId,
        secretHash,
        ...(expirationTime ? { expirationTime } : {}),
        description: input.description ?? '',
        policies: this.#policyIds(input.policies ?? []),
        roles: this.#roleIds(input.roles ?? []),
        serviceIdentities: checkServiceIdentities(input.serviceIdentities ?? []),
        nodeIdentities: checkNodeIdentities(input.nodeIdentities ?? []),
        local: input.local ?? false,
      });
      await this.#commit([{ type: 'put', table: 'acl', key: key.token(accessorId), value: token }]);
      return { token: this.#tokens.get(accessorId) ?? token, secretId };
    });
  }

  /**
   * Consul's token clone (ACL.TokenClone): a new token — new AccessorID and SecretID — with the source's
   * policy and role links, identities, locality and expiration time, and its description unless one is
   * given. A missing or expired source is `ACL not found`, as in Consul.
   */
  cloneToken(accessorId: string, description = ''): Promise<{ token: TokenRecord; secretId: string }> {
    const src = this.token(accessorId);
    if (!src) return Promise.reject(phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found'));
    return this.createToken({
      description: description || src.description,
      policies: src.policies.map((id) => ({ id })),
      roles: (src.roles ?? []).map((id) => ({ id })),
      serviceIdentities: src.serviceIdentities,
      nodeIdentities: src.nodeIdentities,
      local: src.local,
      ...(src.expirationTime ? { expirationTime: src.expirationTime } : {}),
    });
  }

  /** Replaces a token's description, policies and identities (Consul: the SecretID cannot change). */
  updateToken(accessorId: string, input: TokenInput): Promise<TokenRecord> {
    return this.#serial(async () => {
      const prev = this.token(accessorId);
      if (!prev) throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
      if (input.accessorId && input.accessorId !== accessorId)
        throw invalid('Invalid Token: AccessorID in the body does not match the one in the URL');
      if (input.secretId && hashSecret(input.secretId) !== prev.secretHash)
        throw invalid('Invalid Token: Changing a tokens SecretID is not permitted');
      // Consul's TokenSet: the expiry is fixed at creation
      if (
        (input.expirationTtlMs ?? 0) !== 0 ||
        (input.expirationTime !== undefined &&
          Date.parse(input.expirationTime) !== Date.parse(prev.expirationTime ?? ''))
      )
        throw invalid(`Cannot change expiration time of ${accessorId}`);
      const next: TokenRecord = {
        ...prev,
        description: input.description ?? '',
        policies: this.#policyIds(input.policies ?? []),
        roles: this.#roleIds(input.roles ?? []),
        serviceIdentities: checkServiceIdentities(input.serviceIdentities ?? []),
        nodeIdentities: checkNodeIdentities(input.nodeIdentities ?? []),
        modifyIndex: this.#index + 1,
      };
      await this.#commit([{ type: 'put', table: 'acl', key: key.token(accessorId), value: next }]);
      return this.token(accessorId) ?? next;
    });
  }

  /** Deletes a token. False when there was none. The anonymous token cannot be deleted. */
  deleteToken(accessorId: string): Promise<boolean> {
    return this.#serial(async () => {
      if (accessorId === ANONYMOUS_ACCESSOR)
        throw invalid('Deletion of the builtin anonymous token is not permitted');
      if (!this.#tokens.has(accessorId)) return false;
      await this.#commit([{ type: 'del', table: 'acl', key: key.token(accessorId) }]);
      return true;
    });
  }

  /** Creates a policy (its rules parsed first: a bad rule is a 400 naming the problem). */
  createPolicy(input: PolicyInput): Promise<PolicyRecord> {
    return this.#serial(async () => {
      const id = randomUUID();
      const p = this.#checkPolicy(id, input);
      await this.#commit([{ type: 'put', table: 'acl', key: key.policy(id), value: p }]);
      return this.#policies.get(id) ?? p;
    });
  }

  updatePolicy(id: string, input: PolicyInput): Promise<PolicyRecord> {
    return this.#serial(async () => {
      if (id === GLOBAL_MANAGEMENT_ID) {
        if (
          (input.rules ?? '') !== globalManagement().rules ||
          (input.name && input.name !== GLOBAL_MANAGEMENT_NAME)
        )
          throw invalid('Changing the Rules for the builtin global-management policy is not permitted');
        return globalManagement();
      }
      const prev = this.#policies.get(id);
      if (!prev) throw phareError('PHARE_ERR_NOT_FOUND', 'ACL policy not found');
      const p = { ...this.#checkPolicy(id, input), createIndex: prev.createIndex };
      await this.#commit([{ type: 'put', table: 'acl', key: key.policy(id), value: p }]);
      return this.#policies.get(id) ?? p;
    });
  }

  deletePolicy(id: string): Promise<boolean> {
    return this.#serial(async () => {
      if (id === GLOBAL_MANAGEMENT_ID)
        throw invalid('Deletion of the builtin global-management policy is not permitted');
      if (!this.#policies.has(id)) return false;
      // tokens keep the link (Consul resolves links lazily and drops unknown IDs when it shows them)
      await this.#commit([{ type: 'del', table: 'acl', key: key.policy(id) }]);
      return true;
    });
  }

  /** Creates a role (Consul's RoleSet checks: a valid unique Name, existing policies, valid identities). */
  createRole(input: RoleInput): Promise<RoleRecord> {
    return this.#serial(async () => {
      const id = randomUUID();
      const r = this.#checkRole(id, input, true);
      await this.#commit([{ type: 'put', table: 'acl', key: key.role(id), value: r }]);
      return this.#roles.get(id) ?? r;
    });
  }

  /** Replaces a role; every token linking it gets its new rights at once. */
  updateRole(id: string, input: RoleInput): Promise<RoleRecord> {
    return this.#serial(async () => {
      if (!UUID.test(id)) throw invalid('Role ID invalid UUID');
      const prev = this.#roles.get(id);
      if (!prev) throw phareError('PHARE_ERR_NOT_FOUND', `cannot find role ${id}`);
      const r = { ...this.#checkRole(id, input, false), createIndex: prev.createIndex };
      await this.#commit([{ type: 'put', table: 'acl', key: key.role(id), value: r }]);
      return this.#roles.get(id) ?? r;
    });
  }

  /** Deletes a role (tokens keep the link, which then grants nothing). False when there was none. */
  deleteRole(id: string): Promise<boolean> {
    return this.#serial(async () => {
      if (!this.#roles.has(id)) return false;
      await this.#commit([{ type: 'del', table: 'acl', key: key.role(id) }]);
      return true;
    });
  }

  #checkRole(id: string, input: RoleInput, create: boolean): RoleRecord {
    const name = input.name ?? '';
    if (name === '') throw invalid('Invalid Role: no Name is set');
    if (!POLICY_NAME.test(name))
      throw invalid("Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed");
    const other = this.roleByName(name);
    if (other && other.id !== id)
      throw invalid(
        create
          ? `Invalid Role: A Role with Name ${JSON.stringify(name)} already exists`
          : `Invalid Role: A role with name ${JSON.stringify(name)} already exists`,
      );
    return {
      kind: 'role',
      id,
      name,
      description: input.description ?? '',
      policies: this.#policyIds(input.policies ?? [], 'Role'),
      serviceIdentities: checkServiceIdentities(input.serviceIdentities ?? [], 'Role'),
      nodeIdentities: checkNodeIdentities(input.nodeIdentities ?? [], 'Role'),
      createIndex: this.#index + 1,
      modifyIndex: this.#index + 1,
    };
  }

  #roleIds(links: { id?: string; name?: string }[]): string[] {
    const out: string[] = [];
    for (const l of links) {
      const r = l.id ? this.#roles.get(l.id) : l.name ? this.roleByName(l.name) : undefined;
      if (!r)
        throw invalid(
          l.id
            ? `Invalid Token: No such ACL role with ID ${JSON.stringify(l.id)}`
            : `Invalid Token: No such ACL role with name ${JSON.stringify(l.name ?? '')}`,
        );
      if (!out.includes(r.id)) out.push(r.id);
    }
    return out;
  }

  #checkPolicy(id: string, input: PolicyInput): PolicyRecord {
    const name = input.name ?? '';
    if (!POLICY_NAME.test(name))
      throw invalid(
        `Invalid Policy: invalid Name ${JSON.stringify(name)}: 1 to 128 letters, digits, '-' or '_'`,
      );
    const other = this.policyByName(name);
    if (other && other.id !== id)
      throw invalid(`Invalid Policy: A Policy with Name ${JSON.stringify(name)} already exists`);
    const rules = input.rules ?? '';
    try {
      parseRules(rules);
    } catch (err) {
      if (err instanceof RulesError) throw invalid(`Invalid Policy: ${err.message}`);
      throw err;
    }
    return {
      kind: 'policy',
      id,
      name,
      description: input.description ?? '',
      rules,
      datacenters: input.datacenters ?? [],
      createIndex: this.#index + 1,
      modifyIndex: this.#index + 1,
    };
  }

  #policyIds(links: { id?: string; name?: string }[], of: 'Token' | 'Role' = 'Token'): string[] {
    const out: string[] = [];
    for (const l of links) {
      const p = l.id ? this.policy(l.id) : l.name ? this.policyByName(l.name) : undefined;
      if (!p)
        throw invalid(
          l.id
            ? `Invalid ${of}: No such ACL policy with ID ${JSON.stringify(l.id)}`
            : `Invalid ${of}: No such ACL policy with name ${JSON.stringify(l.name ?? '')}`,
        );
      if (!out.includes(p.id)) out.push(p.id);
    }
    return out;
  }

  /**
   * A new token's ExpirationTime from the body, with Consul's TokenSet checks and texts: not both forms, a
   * positive TTL, and between the minimum and maximum from now.
   */
  #expirationOf(input: TokenInput): string | undefined {
    const ttl = input.expirationTtlMs ?? 0;
    const now = this.#clock.now();
    let at: number | undefined;
    if (ttl !== 0) {
      if (ttl < 0) throw invalid(`Token Expiration TTL '${formatDuration(ttl)}' should be > 0`);
      if (input.expirationTime !== undefined)
        throw invalid('Token Expiration TTL and Expiration Time cannot both be set');
      at = now + ttl;
    } else if (input.expirationTime !== undefined) {
      at = Date.parse(input.expirationTime);
      if (Number.isNaN(at))
        throw invalid(
          `Invalid Token: ExpirationTime ${JSON.stringify(input.expirationTime)} is not an RFC 3339 time such as 2026-01-02T15:04:05Z`,
        );
    }
    if (at === undefined) return undefined;
    const inMs = at - now;
    if (inMs < 0) throw invalid('ExpirationTime cannot be before CreateTime');
    if (inMs > this.#expiry.maxMs)
      throw invalid(
        `ExpirationTime cannot be more than ${formatDuration(this.#expiry.maxMs)} in the future (was ${formatDuration(inMs)})`,
      );
    if (inMs < this.#expiry.minMs)
      throw invalid(
        `ExpirationTime cannot be less than ${formatDuration(this.#expiry.minMs)} in the future (was ${formatDuration(inMs)})`,
      );
    return new Date(at).toISOString();
  }

  /**
   * Reaping (Consul's token reaper): a timer for the earliest ExpirationTime deletes the tokens past it
   * from the store. Expired tokens are refused from their ExpirationTime on whether or not the reaper has
   * run; on etcd every agent reaps, and deleting a key already gone is no error.
   */
  #scheduleReap(): void {
    if (this.#closed || !this.enabled) return;
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.#tokens.values()) next = Math.min(next, expiresAt(t));
    if (next === this.#reapAt) return;
    if (this.#reapTimer !== undefined) this.#clock.clearTimeout(this.#reapTimer);
    this.#reapTimer = undefined;
    this.#reapAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    this.#reapTimer = this.#clock.setTimeout(
      () => {
        this.#reapTimer = undefined;
        this.#reapAt = Number.POSITIVE_INFINITY;
        void this.#reap();
      },
      Math.max(0, next - this.#clock.now()),
    );
  }

  async #reap(): Promise<void> {
    try {
      await this.#serial(async () => {
        const gone = [...this.#tokens.values()].filter((t) => this.#expired(t));
        if (gone.length === 0) return;
        await this.#commit(
          gone.map((t) => ({ type: 'del' as const, table: 'acl' as const, key: key.token(t.accessorId) })),
        );
        this.#log?.info({ accessorIds: gone.map((t) => t.accessorId) }, 'acl: reaped expired tokens');
      });
    } catch (err) {
      if (this.#closed) return;
      this.#log?.warn({ err: String(err) }, 'acl: reaping expired tokens failed; retrying in 10s');
      this.#reapTimer = this.#clock.setTimeout(() => {
        this.#reapTimer = undefined;
        void this.#reap();
      }, 10_000);
      return;
    }
    this.#scheduleReap();
  }

  #newToken(t: Partial<TokenRecord> & Pick<TokenRecord, 'accessorId' | 'secretHash'>): TokenRecord {
    return {
      kind: 'token',
      description: '',
      policies: [],
      serviceIdentities: [],
      nodeIdentities: [],
      local: false,
      createTime: new Date(this.#clock.now()).toISOString(),
      createIndex: this.#index + 1,
      modifyIndex: this.#index + 1,
      ...t,
    };
  }

  async #ensureInitialManagement(secret: string): Promise<void> {
    const hash = hashSecret(secret);
    if (this.#bySecret.has(hash)) return;
    const accessorId = accessorFromHash(hashSecret(`phare-initial-management\u0000${secret}`));
    const token = this.#newToken({
      accessorId,
      secretHash: hash,
      description: 'Initial Management Token',
      policies: [GLOBAL_MANAGEMENT_ID],
    });
    await this.#serial(async () => {
      // As in Consul, the initial management token is the bootstrap: PUT /v1/acl/bootstrap is refused after.
      // Every agent configured with the secret writes the same row (its accessor derives from the secret).
      const ops: SharedStoreOp[] = [{ type: 'put', table: 'acl', key: key.token(accessorId), value: token }];
      if (!this.#bootstrap)
        ops.push({ type: 'put', table: 'acl', key: key.bootstrap, value: { kind: 'bootstrap', index: 0 } });
      await this.#commit(ops);
    });
    this.#log?.info({ accessorId }, 'acl: initial management token created');
  }

  /** One write at a time: each is checked against the state the previous one left. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed)
      return Promise.reject(phareError('PHARE_ERR_STORE_CLOSED', 'acl: the agent is shutting down'));
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  /**
   * Commits `ops` and applies them once durable (shared store: once the watch delivered them). With
   * `guards` (shared store), false when a guard failed: nothing was written, and the cache has caught up
   * with what made it fail.
   */
  async #commit(ops: SharedStoreOp[], guards: StoreGuard[] = []): Promise<boolean> {
    if (this.#shared) {
      if (guards.length > 0) {
        const r = await this.#shared.commitIf(ops, guards);
        await this.#waitApplied(r.index);
        return r.ok;
      }
      const rev = await this.#shared.commit(ops);
      await this.#waitApplied(rev);
      return true;
    }
    const index = this.#index + 1;
    const local: StoreOp[] = ops.map((o) =>
      o.type === 'put'
        ? {
            type: 'put',
            table: o.table as 'acl',
            key: o.key,
            value: stamp(o.value as AclRow, index, o.key === key.bootstrap),
          }
        : { type: 'del', table: o.table as 'acl', key: o.key },
    );
    await this.#store.write(local, index);
    this.#index = index;
    for (const o of local) this.#applyRow(o.key, o.type === 'put' ? (o.value as AclRow) : undefined);
    this.#changed();
    return true;
  }

  #waitApplied(index: number): Promise<void> {
    if (this.#applied >= index || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const w = { index, resolve: () => resolve() };
      this.#appliedWaiters.add(w);
    });
  }

  #onEvent(e: StoreEvent): void {
    let changed = false;
    for (const ch of e.changes) {
      if (ch.table !== 'acl') continue;
      changed = true;
      this.#applyRow(
        ch.key,
        ch.type === 'put' ? withIndexes(ch.value as AclRow, ch.createIndex, ch.modifyIndex) : undefined,
      );
    }
    if (changed) {
      this.#index = Math.max(this.#index, e.index);
      this.#changed();
    }
    if (e.index > this.#applied) this.#applied = e.index;
    for (const w of [...this.#appliedWaiters]) {
      if (w.index <= this.#applied) {
        this.#appliedWaiters.delete(w);
        w.resolve();
      }
    }
  }

  #applyRow(k: string, row: AclRow | undefined): void {
    if (k === key.bootstrap) {
      this.#bootstrap = row as BootstrapRecord | undefined;
      return;
    }
    if (k.startsWith('token:')) {
      const prev = this.#tokens.get(k.slice(6));
      if (prev) this.#bySecret.delete(prev.secretHash);
      if (row) {
        const t = row as TokenRecord;
        this.#tokens.set(t.accessorId, t);
        this.#bySecret.set(t.secretHash, t);
      } else this.#tokens.delete(k.slice(6));
      return;
    }
    if (k.startsWith('role:')) {
      if (row) this.#roles.set(k.slice(5), row as RoleRecord);
      else this.#roles.delete(k.slice(5));
      return;
    }
    if (k.startsWith('policy:')) {
      const id = k.slice(7);
      if (row) {
        const p = row as PolicyRecord;
        this.#policies.set(id, p);
        try {
          this.#compiled.set(id, parseRules(p.rules));
        } catch (err) {
          // checked when written; a row written by another (newer) Phare may still fail here
          this.#log?.warn(
            { policy: p.name, err: String(err) },
            'acl: a stored policy has rules this agent cannot parse; it grants nothing',
          );
          this.#compiled.set(id, emptyRules());
        }
      } else {
        this.#policies.delete(id);
        this.#compiled.delete(id);
      }
    }
  }

  #changed(): void {
    this.#generation++;
    this.#authorizers.clear();
    this.#resolved.clear();
    this.#scheduleReap();
  }

  /** Waits for writes in flight, stops the watch. */
  async close(): Promise<void> {
    await this.#chain;
    this.#closed = true;
    if (this.#reapTimer !== undefined) this.#clock.clearTimeout(this.#reapTimer);
    for (const w of this.#appliedWaiters) w.resolve();
    await this.#watch?.close();
  }
}

/** When a token stops working (epoch ms); never: +Infinity. */
function expiresAt(t: TokenRecord): number {
  return t.expirationTime === undefined ? Number.POSITIVE_INFINITY : Date.parse(t.expirationTime);
}

/** A row's key from its value (the local stores hand values back without keys). */
function keyOf(v: AclRow): string {
  return v.kind === 'token'
    ? key.token(v.accessorId)
    : v.kind === 'policy'
      ? key.policy(v.id)
      : v.kind === 'role'
        ? key.role(v.id)
        : key.bootstrap;
}

function stamp(v: AclRow, index: number, bootstrap: boolean): AclRow {
  if (bootstrap) return { kind: 'bootstrap', index };
  return v;
}

function withIndexes(v: AclRow, createIndex: number, modifyIndex: number): AclRow {
  if (v.kind === 'bootstrap') return { kind: 'bootstrap', index: createIndex };
  return { ...v, createIndex, modifyIndex };
}

function globalManagement(): PolicyRecord {
  return {
    kind: 'policy',
    id: GLOBAL_MANAGEMENT_ID,
    name: GLOBAL_MANAGEMENT_NAME,
    description: 'Builtin Policy that grants unlimited access',
    // Consul's ACLPolicyGlobalManagement rules text
    rules:
      'acl = "write"\nagent_prefix "" {\n  policy = "write"\n}\nevent_prefix "" {\n  policy = "write"\n}\nkey_prefix "" {\n  policy = "write"\n}\nkeyring = "write"\nnode_prefix "" {\n  policy = "write"\n}\noperator = "write"\nmesh = "write"\npeering = "write"\nquery_prefix "" {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "write"\n  intentions = "write"\n}\nsession_prefix "" {\n  policy = "write"\n}',
    datacenters: [],
    createIndex: 1,
    modifyIndex: 1,
  };
}

/** Consul's service identity template: write on the service (and its sidecar), read on every service and node. */
function serviceIdentityRules(name: string): Rules {
  const r = emptyRules();
  r.segments.service.exact.set(name, 'write');
  r.segments.service.exact.set(`${name}-sidecar-proxy`, 'write');
  r.segments.service.prefix.set('', 'read');
  r.segments.node.prefix.set('', 'read');
  return r;
}

/** Consul's node identity template: write on the node, read on every service. */
function nodeIdentityRules(name: string): Rules {
  const r = emptyRules();
  r.segments.node.exact.set(name, 'write');
  r.segments.service.prefix.set('', 'read');
  return r;
}

const IDENTITY_NAME = /^[a-z0-9]([a-z0-9-_]{0,254})?$/i;

function checkServiceIdentities(
  list: { ServiceName: string; Datacenters?: string[] }[],
  of: 'Token' | 'Role' = 'Token',
) {
  for (const s of list)
    if (!IDENTITY_NAME.test(s.ServiceName ?? ''))
      throw invalid(
        `Invalid ${of}: Service identity ${JSON.stringify(s.ServiceName ?? '')} has an invalid name`,
      );
  return list.map((s) => ({
    ServiceName: s.ServiceName,
    ...(s.Datacenters ? { Datacenters: s.Datacenters } : {}),
  }));
}

function checkNodeIdentities(
  list: { NodeName: string; Datacenter: string }[],
  of: 'Token' | 'Role' = 'Token',
) {
  for (const n of list) {
    if (!IDENTITY_NAME.test(n.NodeName ?? ''))
      throw invalid(
        `Invalid ${of}: Node identity ${JSON.stringify(n.NodeName ?? '')} has an invalid node name`,
      );
    if (!n.Datacenter)
      throw invalid(
        `Invalid ${of}: Node identity ${JSON.stringify(n.NodeName)} is missing the datacenter field`,
      );
  }
  return list.map((n) => ({ NodeName: n.NodeName, Datacenter: n.Datacenter }));
}

/** What is wrong with a stored ACL row (the store names the table and key when it refuses to load it). */
export function aclRowProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const r = v as Record<string, unknown>;
  if (r.kind === 'bootstrap')
    return Number.isSafeInteger(r.index) ? undefined : 'field "index": expected an integer';
  if (r.kind === 'token') {
    if (
      typeof r.accessorId !== 'string' ||
      typeof r.secretHash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(r.secretHash)
    )
      return 'fields "accessorId"/"secretHash": expected a UUID and a SHA-256';
    if (!Array.isArray(r.policies)) return 'field "policies": expected a list';
    if (r.roles !== undefined && !Array.isArray(r.roles)) return 'field "roles": expected a list';
    return undefined;
  }
  if (r.kind === 'role') {
    if (typeof r.id !== 'string' || typeof r.name !== 'string' || !Array.isArray(r.policies))
      return 'fields "id"/"name"/"policies": expected strings and a list';
    return undefined;
  }
  if (r.kind === 'policy') {
    if (typeof r.id !== 'string' || typeof r.name !== 'string' || typeof r.rules !== 'string')
      return 'fields "id"/"name"/"rules": expected strings';
    return undefined;
  }
  return 'field "kind": expected token, policy, role or bootstrap';
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const TOKEN_FILE_KINDS: readonly AgentTokenKind[] = ['default', 'agent', 'dns'];

/** Reads `acl-tokens.json` (`{"default": "<sha256>", …}`); none yet: empty. A damaged file stops the start. */
function readTokenFile(file: string): Map<AgentTokenKind, string> {
  const out = new Map<AgentTokenKind, string>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${file}: cannot read the persisted agent tokens: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${file}: not JSON (${(err as Error).message}); expected the agent tokens this agent wrote (restore it, or delete it to fall back to the configured tokens)`,
      { cause: err },
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw phareError('PHARE_ERR_INVALID_CONFIG', `${file}: expected an object of agent token hashes`);
  for (const [k, v] of Object.entries(json)) {
    if (
      !(TOKEN_FILE_KINDS as readonly string[]).includes(k) ||
      typeof v !== 'string' ||
      !/^[0-9a-f]{64}$/.test(v)
    )
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${file}: field ${JSON.stringify(k)}: expected one of ${TOKEN_FILE_KINDS.join(', ')} with a SHA-256 (64 hex digits)`,
      );
    out.set(k as AgentTokenKind, v);
  }
  return out;
}

/** Writes the token file atomically (temp file, fsync, rename), readable by the agent's user only. */
function writeTokenFile(file: string, tokens: Map<AgentTokenKind, string>): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(tokens), null, 2)}\n`, {
    mode: 0o600,
    flush: true,
  });
  renameSync(tmp, file);
}
