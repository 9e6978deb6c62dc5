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
import type { Logger } from 'pino';
import { phareError } from '../../api/index.ts';
import type { Clock } from '../clock.ts';
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
  serviceIdentities: { ServiceName: string; Datacenters?: string[] }[];
  nodeIdentities: { NodeName: string; Datacenter: string }[];
  local: boolean;
  /** RFC 3339. */
  createTime: string;
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

/** The row that says the ACL system was bootstrapped, and at which index (Consul's "reset index"). */
interface BootstrapRecord {
  kind: 'bootstrap';
  index: number;
}

type AclRow = TokenRecord | PolicyRecord | BootstrapRecord;

/** What a token create/update asks for (already decoded from Consul's body). */
export interface TokenInput {
  accessorId?: string;
  secretId?: string;
  description?: string;
  /** Links by ID or name, as Consul's `Policies: [{ID}|{Name}]`. */
  policies?: { id?: string; name?: string }[];
  serviceIdentities?: { ServiceName: string; Datacenters?: string[] }[];
  nodeIdentities?: { NodeName: string; Datacenter: string }[];
  local?: boolean;
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
  readonly #compiled = new Map<string, Rules>();
  readonly #authorizers = new Map<string, Authorizer>();
  /**
   * Secrets already verified (hashed and compared in constant time once) → their authorizer, so a token that
   * comes back on every request costs one Map lookup instead of a SHA-256, two hex decodes and a compare
   * (BENCHMARKS.md, issue 14: that was most of the token-checked read's cost). Only secrets that resolved
   * are kept (an unknown secret is hashed every time, so guessing cannot fill it), bounded by
   * {@link RESOLVED_MAX}, and emptied on every token or policy change ({@link #changed}).
   */
  readonly #resolved = new Map<string, Authorizer>();
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
    this.#index = index;
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
    return acl;
  }

  // ---------------------------------------------------------------- resolution

  /**
   * The authorizer of a request's secret. With ACLs off, allow-all. No secret: the anonymous token. A
   * secret the agent does not know: PHARE_ERR_ACL_NOT_FOUND (Consul's 403 `ACL not found`).
   */
  resolve(secret: string | undefined): Authorizer {
    if (!this.enabled) return this.#allowAll;
    if (secret === undefined || secret === '' || secret === ANONYMOUS_SECRET)
      return this.#authorizerOf(this.#anonymous());
    // A lookup keyed by the secret itself: V8 compares the strings only when their hashes collide, and
    // only secrets that already proved valid are in it, so it tells a guesser nothing the 403 does not.
    const known = this.#resolved.get(secret);
    if (known) return known;
    const hash = hashSecret(secret);
    const token = this.#bySecret.get(hash);
    if (!token || !timingSafeEqual(Buffer.from(token.secretHash, 'hex'), Buffer.from(hash, 'hex')))
      throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
    const a = this.#authorizerOf(token);
    if (this.#resolved.size >= RESOLVED_MAX)
      this.#resolved.delete(this.#resolved.keys().next().value as string);
    this.#resolved.set(secret, a);
    return a;
  }

  /** The token DNS answers with (`--acl-dns-token`, else anonymous); an unknown one grants nothing. */
  dnsAuthorizer(): Authorizer {
    try {
      return this.resolve(this.#dnsToken);
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
    const who = this.#dnsToken ? 'the --acl-dns-token' : 'the anonymous token';
    return (
      `DNS answers with ${who}, which may read no ${missing.join(' and no ')} under --acl-default-policy ` +
      `${this.defaultPolicy}: every DNS lookup of a service or node answers NXDOMAIN. Give ${who} a policy with ` +
      `service_prefix "" { policy = "read" } and node_prefix "" { policy = "read" } (docs/security.md#dns-and-acls)`
    );
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
    if (token.policies.includes(GLOBAL_MANAGEMENT_ID)) {
      a = new AllowAll(token.accessorId, false);
    } else {
      const rules = emptyRules();
      for (const id of token.policies) {
        const compiled = this.#compiled.get(id);
        if (compiled) mergeRules(rules, compiled);
      }
      for (const si of token.serviceIdentities) mergeRules(rules, serviceIdentityRules(si.ServiceName));
      for (const ni of token.nodeIdentities) mergeRules(rules, nodeIdentityRules(ni.NodeName));
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
    return accessorId === ANONYMOUS_ACCESSOR ? this.#anonymous() : this.#tokens.get(accessorId);
  }

  /** The token a secret names (token/self). */
  tokenBySecret(secret: string | undefined): TokenRecord {
    if (secret === undefined || secret === '' || secret === ANONYMOUS_SECRET) return this.#anonymous();
    const t = this.#bySecret.get(hashSecret(secret));
    if (!t) throw phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
    return t;
  }

  tokens(): TokenRecord[] {
    const out = [...this.#tokens.values()];
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

  /** Whether `PUT /v1/acl/bootstrap` already happened, and its index (Consul's reset index). */
  bootstrapIndex(): number | undefined {
    return this.#bootstrap?.index;
  }

  // ---------------------------------------------------------------- writes

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
      const token = this.#newToken({
        accessorId,
        secretHash,
        description: input.description ?? '',
        policies: this.#policyIds(input.policies ?? []),
        serviceIdentities: checkServiceIdentities(input.serviceIdentities ?? []),
        nodeIdentities: checkNodeIdentities(input.nodeIdentities ?? []),
        local: input.local ?? false,
      });
      await this.#commit([{ type: 'put', table: 'acl', key: key.token(accessorId), value: token }]);
      return { token: this.#tokens.get(accessorId) ?? token, secretId };
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
      const next: TokenRecord = {
        ...prev,
        description: input.description ?? '',
        policies: this.#policyIds(input.policies ?? []),
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

  #policyIds(links: { id?: string; name?: string }[]): string[] {
    const out: string[] = [];
    for (const l of links) {
      const p = l.id ? this.policy(l.id) : l.name ? this.policyByName(l.name) : undefined;
      if (!p)
        throw invalid(
          l.id
            ? `Invalid Token: No such ACL policy with ID ${JSON.stringify(l.id)}`
            : `Invalid Token: No such ACL policy with name ${JSON.stringify(l.name ?? '')}`,
        );
      if (!out.includes(p.id)) out.push(p.id);
    }
    return out;
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
  }

  /** Waits for writes in flight, stops the watch. */
  async close(): Promise<void> {
    await this.#chain;
    this.#closed = true;
    for (const w of this.#appliedWaiters) w.resolve();
    await this.#watch?.close();
  }
}

/** A row's key from its value (the local stores hand values back without keys). */
function keyOf(v: AclRow): string {
  return v.kind === 'token'
    ? key.token(v.accessorId)
    : v.kind === 'policy'
      ? key.policy(v.id)
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

function checkServiceIdentities(list: { ServiceName: string; Datacenters?: string[] }[]) {
  for (const s of list)
    if (!IDENTITY_NAME.test(s.ServiceName ?? ''))
      throw invalid(
        `Invalid Token: Service identity ${JSON.stringify(s.ServiceName ?? '')} has an invalid name`,
      );
  return list.map((s) => ({
    ServiceName: s.ServiceName,
    ...(s.Datacenters ? { Datacenters: s.Datacenters } : {}),
  }));
}

function checkNodeIdentities(list: { NodeName: string; Datacenter: string }[]) {
  for (const n of list) {
    if (!IDENTITY_NAME.test(n.NodeName ?? ''))
      throw invalid(
        `Invalid Token: Node identity ${JSON.stringify(n.NodeName ?? '')} has an invalid node name`,
      );
    if (!n.Datacenter)
      throw invalid(
        `Invalid Token: Node identity ${JSON.stringify(n.NodeName)} is missing the datacenter field`,
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
    return undefined;
  }
  if (r.kind === 'policy') {
    if (typeof r.id !== 'string' || typeof r.name !== 'string' || typeof r.rules !== 'string')
      return 'fields "id"/"name"/"rules": expected strings';
    return undefined;
  }
  return 'field "kind": expected token, policy or bootstrap';
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
