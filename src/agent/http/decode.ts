/**
 * Request body decoding with Consul's rules (Consul docs, HTTP API overview): JSON keys match case-insensitively
 * and snake_case aliases bind (`enable_tag_override`, `service_id`), unknown keys are a 400
 * `Request decode failed: json: unknown field "Foo"`, durations are Go strings or nanosecond numbers.
 * Semantic validation (ranges, required fields) follows in `validate.ts`.
 */
import secureJson from 'secure-json-parse';
import { z } from 'zod';
import { DurationError, durationFromJson } from '../../api/index.ts';
import { fastServiceBody } from './decode-fast.ts';
import { HttpError } from './errors.ts';
import { checkBodyLimits } from './limits.ts';

/** Folds a key the way Consul's decoder matches it: case-insensitive, snake_case aliases allowed. */
function fold(key: string): string {
  return key.toLowerCase().replace(/_/g, '');
}

/**
 * A strict object schema whose keys match case-insensitively (and with underscores ignored), so
 * `{"name": "web"}`, `{"NAME": "web"}` and `{"Name": "web"}` all bind to `Name`.
 */
function ci<T extends z.ZodRawShape>(shape: T) {
  const canon = new Map<string, string>();
  for (const k of Object.keys(shape)) canon.set(fold(k), k);
  return z.preprocess((v) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    // No prototype: a key named `__proto__` (from a value not parsed by decodeBody) stays a plain key
    // and is reported as an unknown field instead of replacing the object's prototype (issue 11 §10).
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, val] of Object.entries(v)) out[canon.get(fold(k)) ?? k] = val;
    return out;
  }, z.strictObject(shape));
}

/** A Go duration: `"10s"` or a number of nanoseconds; decoded to milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return durationFromJson(v);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: err instanceof DurationError ? err.message : String(err),
      input: v,
    });
    return z.NEVER;
  }
});

const int = z.number().int();
const strMap = z.record(z.string(), z.string());
/** Fields Consul accepts that Phare stores nowhere (mesh, enterprise); accepted so bodies stay portable. */
const ignored = z.unknown().optional();

/** `Locality` (Consul 1.16+): where an instance runs; stored and returned, used for nothing else. */
const localitySchema = ci({ Region: z.string().optional(), Zone: z.string().optional() });
/** Opaque objects Phare stores and returns but does not interpret (Connect proxy and Connect config). */
const opaqueObject = z.record(z.string(), z.unknown());

/**
 * How a check is run: the fields `structs.CheckType` and `structs.HealthCheckDefinition` (a catalog check's
 * `Definition`) share. Fields of check kinds Phare does not run (gRPC, UDP, script, …) are decoded so the
 * validator can tell an empty value (what Consul's Go client always sends for some of them) from a real
 * request for that kind.
 */
const probeShape = {
  HTTP: z.string().optional(),
  Method: z.string().optional(),
  Header: z.record(z.string(), z.array(z.string())).nullable().optional(),
  Body: z.string().optional(),
  TLSSkipVerify: z.boolean().optional(),
  TLSServerName: z.string().optional(),
  DisableRedirects: z.boolean().optional(),
  TCP: z.string().optional(),
  TCPUseTLS: z.boolean().optional(),
  TTL: duration.optional(),
  Interval: duration.optional(),
  Timeout: duration.optional(),
  DeregisterCriticalServiceAfter: duration.optional(),
  OutputMaxSize: int.optional(),
  GRPC: z.string().optional(),
  GRPCUseTLS: z.boolean().optional(),
  UDP: z.string().optional(),
  H2PING: z.string().optional(),
  H2PingUseTLS: z.boolean().optional(),
  ScriptArgs: z.array(z.string()).nullable().optional(),
  Shell: z.string().optional(),
  DockerContainerID: z.string().optional(),
  OSService: z.string().optional(),
  AliasNode: z.string().optional(),
  AliasService: z.string().optional(),
};

/**
 * Every field of a check definition as Consul decodes it: `api.AgentServiceCheck`,
 * `api.AgentCheckRegistration`, `structs.CheckType`, `structs.CheckDefinition` and `structs.HealthCheck`.
 */
const checkShape = {
  ...probeShape,
  CheckID: z.string().optional(),
  ID: z.string().optional(),
  Name: z.string().optional(),
  Notes: z.string().optional(),
  Status: z.string().optional(),
  ServiceID: z.string().optional(),
  SuccessBeforePassing: int.optional(),
  FailuresBeforeWarning: int.optional(),
  FailuresBeforeCritical: int.optional(),
  // legacy spellings of a script check
  Args: z.array(z.string()).nullable().optional(),
  Script: z.string().optional(),
  // structs.CheckType's proxy rewrites and ACL token: accepted, not used
  ProxyHTTP: ignored,
  ProxyGRPC: ignored,
  Token: ignored,
  Definition: ignored,
  Type: z.string().optional(),
  Namespace: ignored,
  Partition: ignored,
  PeerName: ignored,
  Node: z.string().optional(),
  ServiceName: ignored,
  ServiceTags: ignored,
  Output: z.string().optional(),
  CreateIndex: ignored,
  ModifyIndex: ignored,
  ExposedPort: int.optional(),
};

/** A check as decoded from a body (durations in ms). */
export type CheckBody = z.output<ReturnType<typeof ci<typeof checkShape>>>;

const checkSchema = ci(checkShape);

// Go decodes a missing field as its zero value: {"Passing": 3} is Warning 0, as in Consul
const weightsSchema = ci({ Passing: int.default(0), Warning: int.default(0) });
const taggedAddressSchema = ci({ Address: z.string().default(''), Port: int.default(0) });

/**
 * A service as Consul decodes it: `structs.ServiceDefinition` (agent endpoint) and `structs.NodeService` /
 * `api.AgentService` (the `Service` of catalog/register), so one shape takes both spellings (`Name` or
 * `Service`) and every field either carries.
 */
const serviceShape = {
  Name: z.string().optional(),
  ID: z.string().optional(),
  Tags: z.array(z.string()).nullable().optional(),
  Address: z.string().optional(),
  Port: int.optional(),
  SocketPath: z.string().optional(),
  Meta: strMap.nullable().optional(),
  TaggedAddresses: z.record(z.string(), taggedAddressSchema).nullable().optional(),
  Weights: weightsSchema.nullable().optional(),
  EnableTagOverride: z.boolean().optional(),
  Check: checkSchema.nullable().optional(),
  Checks: z.array(checkSchema).nullable().optional(),
  Kind: z.string().optional(),
  Proxy: opaqueObject.nullable().optional(),
  Connect: opaqueObject.nullable().optional(),
  Locality: localitySchema.nullable().optional(),
  Token: ignored,
  Namespace: ignored,
  Partition: ignored,
  // catalog-style spelling accepted in catalog/register's Service object
  Service: z.string().optional(),
  CreateIndex: ignored,
  ModifyIndex: ignored,
  ContentHash: ignored,
  Datacenter: ignored,
  PeerName: ignored,
  LocallyRegisteredAsSidecar: ignored,
};

/** `PUT /v1/agent/service/register` body. */
export const serviceRegisterSchema = ci(serviceShape);
/** Decoded service registration. */
export type ServiceBody = z.output<typeof serviceRegisterSchema>;

/** `PUT /v1/agent/check/register` body (a check definition with `ID`/`Name`/`ServiceID`). */
export const checkRegisterSchema = checkSchema;

/** `PUT /v1/agent/check/update/:id` body. */
export const checkUpdateSchema = ci({ Status: z.string().optional(), Output: z.string().optional() });

/**
 * A catalog check's `Definition`: every field of `structs.HealthCheckDefinition` and of the Go client's
 * `api.HealthCheckDefinition`, which always marshals `TCPUseTLS`, `UDP`, `GRPC`, `GRPCUseTLS`,
 * `OSService` and `Interval`/`Timeout`/`DeregisterCriticalServiceAfter` (as `"0s"`), set or not.
 */
const definitionSchema = ci({
  ...probeShape,
  // api.HealthCheckDefinition's own spellings of the durations, and session checks' name
  IntervalDuration: duration.optional(),
  TimeoutDuration: duration.optional(),
  DeregisterCriticalServiceAfterDuration: duration.optional(),
  SessionName: z.string().optional(),
});
/** A decoded catalog check definition. */
export type DefinitionBody = z.output<typeof definitionSchema>;

const catalogCheckSchema = ci({ ...checkShape, Definition: definitionSchema.nullable().optional() });
/** A decoded catalog/register check (`structs.HealthCheck`). */
export type CatalogCheckBody = z.output<typeof catalogCheckSchema>;

/** `PUT /v1/catalog/register` body. */
export const catalogRegisterSchema = ci({
  ID: z.string().optional(),
  Node: z.string().optional(),
  Address: z.string().optional(),
  Datacenter: z.string().optional(),
  TaggedAddresses: strMap.nullable().optional(),
  NodeMeta: strMap.nullable().optional(),
  Service: serviceRegisterSchema.nullable().optional(),
  Check: catalogCheckSchema.nullable().optional(),
  Checks: z.array(catalogCheckSchema).nullable().optional(),
  SkipNodeUpdate: z.boolean().optional(),
  Locality: localitySchema.nullable().optional(),
  Token: ignored,
  WriteRequest: ignored,
  Partition: ignored,
  Namespace: ignored,
  PeerName: ignored,
  EnterpriseMeta: ignored,
});
/** Decoded catalog registration. */
export type CatalogRegisterBody = z.output<typeof catalogRegisterSchema>;

/** `PUT /v1/catalog/deregister` body. */
export const catalogDeregisterSchema = ci({
  Node: z.string().optional(),
  ServiceID: z.string().optional(),
  CheckID: z.string().optional(),
  Datacenter: z.string().optional(),
  // api.CatalogDeregistration still has Address ("obsolete", its comment says); Consul ignores it
  Address: ignored,
  Token: ignored,
  WriteRequest: ignored,
  Partition: ignored,
  Namespace: ignored,
  PeerName: ignored,
  EnterpriseMeta: ignored,
});

const GO_TYPE: Record<string, string> = {
  number: 'int',
  string: 'string',
  boolean: 'bool',
  object: 'object',
  array: 'array',
};

/**
 * Parses a JSON body and decodes it with `schema`. Throws a 400 {@link HttpError} with Consul's
 * `Request decode failed: …` text naming the field.
 */
export function decodeBody<S extends z.ZodType>(body: Buffer | undefined, schema: S): z.output<S> {
  const text = body && body.length > 0 ? body.toString('utf8') : '';
  if (text.trim() === '') throw new HttpError(400, 'Request decode failed: EOF');
  let json: unknown;
  try {
    // secure-json-parse (fastify's own body parser): JSON.parse, then reject `__proto__` keys and
    // `constructor.prototype`, which would let a body set fields through an object's prototype.
    json = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    const forbidden = err instanceof SyntaxError && /forbidden (prototype|constructor)/.test(err.message);
    const path = forbidden ? forbiddenKeyPath(JSON.parse(text)) : undefined;
    if (path !== undefined) {
      throw new HttpError(
        400,
        `Request decode failed: json: key ${JSON.stringify(path)} is not allowed (keys named __proto__, or constructor holding prototype, are rejected)`,
      );
    }
    throw new HttpError(400, `Request decode failed: invalid JSON: ${(err as Error).message}`);
  }
  checkBodyLimits(json);
  if ((schema as z.ZodType) === serviceRegisterSchema) {
    // the usual registration's shape, decoded by hand (decode-fast.ts): the schema's answer, much cheaper
    const fast = fastServiceBody(json);
    if (fast !== undefined) return fast as z.output<S>;
  }
  return decodeValue(json, schema);
}

/** The path of the first `__proto__` or `constructor.prototype` key in a parsed value (error path only). */
function forbiddenKeyPath(value: unknown, path = ''): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    const here = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (k === '__proto__') return here;
    if (k === 'constructor' && v !== null && typeof v === 'object' && Object.hasOwn(v, 'prototype')) {
      return `${here}.prototype`;
    }
    const inner = forbiddenKeyPath(v, here);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** Decodes an already-parsed value; see {@link decodeBody}. */
export function decodeValue<S extends z.ZodType>(json: unknown, schema: S): z.output<S> {
  const r = schema.safeParse(json, { reportInput: true });
  if (r.success) return r.data;
  throw new HttpError(400, `Request decode failed: ${describeIssue(r.error.issues)}`);
}

function describeIssue(issues: readonly z.core.$ZodIssue[]): string {
  // Report an unknown field first, as Go's decoder does (it stops at the first one).
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? (issues[0] as z.core.$ZodIssue);
  const path = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
  switch (issue.code) {
    case 'unrecognized_keys':
      return `json: unknown field ${JSON.stringify(issue.keys[0])}${path ? ` in ${path}` : ''}`;
    case 'invalid_type': {
      const got = issue.input === null ? 'null' : Array.isArray(issue.input) ? 'array' : typeof issue.input;
      if (issue.input === undefined) return `json: missing value for field ${path}`;
      const want = GO_TYPE[issue.expected] ?? issue.expected;
      if (path === '')
        return `json: cannot unmarshal ${GO_TYPE[got] ?? got} into a ${want}: expected a JSON object`;
      return `json: cannot unmarshal ${GO_TYPE[got] ?? got} into field ${path} of type ${want}`;
    }
    case 'invalid_union':
      return `json: field ${path} has the wrong type: expected a duration string like "10s" or a number of nanoseconds`;
    case 'custom':
      return `${path ? `${path}: ` : ''}${issue.message}`;
    default:
      return `${path || 'body'}: ${issue.message}`;
  }
}

/**
 * `PUT /v1/session/create` (api-docs/session). Patroni sends lower-case keys and Go durations:
 * `{"name":…,"checks":[],"lockdelay":"0.001s","behavior":"delete","ttl":"15.0s"}`. `LockDelay` is a Go
 * duration string or a number of nanoseconds; what is below 1000 ns is read as seconds (Consul
 * FixupLockDelay). `TTL` is a string, as in Consul's struct.
 */
export const sessionCreateSchema = ci({
  Name: z.string().optional(),
  Node: z.string().optional(),
  Checks: z.array(z.string()).nullable().optional(),
  NodeChecks: z.array(z.string()).nullable().optional(),
  ServiceChecks: z
    .array(ci({ ID: z.string(), Namespace: z.string().optional() }))
    .nullable()
    .optional(),
  LockDelay: z.union([z.string(), z.number()]).optional(),
  Behavior: z.string().optional(),
  TTL: z.string().optional(),
  ID: ignored,
  Namespace: ignored,
  Partition: ignored,
  CreateIndex: ignored,
  ModifyIndex: ignored,
});

/** One `/v1/txn` operation (api-docs/txn): only `KV` operations are supported. */
export const txnSchema = z.array(
  ci({
    KV: ci({
      Verb: z.string(),
      Key: z.string().optional(),
      Value: z.string().nullable().optional(),
      Flags: z.number().int().nonnegative().optional(),
      Index: z.number().int().nonnegative().optional(),
      Session: z.string().optional(),
      Namespace: ignored,
      Partition: ignored,
    }).optional(),
    Node: ignored,
    Service: ignored,
    Check: ignored,
  }),
);

/** A policy or role link of a token (`{"ID": …}` or `{"Name": …}`). */
const aclLink = ci({ ID: z.string().optional(), Name: z.string().optional() });
/** Consul's service and node identities, on tokens and roles alike. */
const aclServiceIdentities = z
  .array(ci({ ServiceName: z.string(), Datacenters: z.array(z.string()).nullable().optional() }))
  .nullable()
  .optional();
const aclNodeIdentities = z
  .array(ci({ NodeName: z.string(), Datacenter: z.string() }))
  .nullable()
  .optional();

/**
 * `PUT /v1/acl/token[/:accessor]` (api-docs/acl/tokens). Fields Consul computes or that belong to features
 * Phare lacks (roles, expiry, namespaces) are accepted and ignored, except that roles and expiry are refused
 * by the route when set (they would silently grant or expire nothing).
 */
export const aclTokenSchema = ci({
  AccessorID: z.string().optional(),
  SecretID: z.string().optional(),
  Description: z.string().optional(),
  Policies: z.array(aclLink).nullable().optional(),
  Roles: z.array(aclLink).nullable().optional(),
  ServiceIdentities: aclServiceIdentities,
  NodeIdentities: aclNodeIdentities,
  TemplatedPolicies: ignored,
  Local: z.boolean().optional(),
  ExpirationTime: z.string().nullable().optional(),
  ExpirationTTL: z.union([z.string(), z.number()]).optional(),
  Namespace: ignored,
  Partition: ignored,
  AuthMethod: ignored,
  Hash: ignored,
  CreateTime: ignored,
  CreateIndex: ignored,
  ModifyIndex: ignored,
  Legacy: ignored,
});

/** `PUT /v1/acl/role[/:id]` (api-docs/acl/roles). */
export const aclRoleSchema = ci({
  ID: z.string().optional(),
  Name: z.string().optional(),
  Description: z.string().optional(),
  Policies: z.array(aclLink).nullable().optional(),
  ServiceIdentities: aclServiceIdentities,
  NodeIdentities: aclNodeIdentities,
  TemplatedPolicies: ignored,
  Namespace: ignored,
  Partition: ignored,
  Hash: ignored,
  CreateIndex: ignored,
  ModifyIndex: ignored,
});

/** `PUT /v1/agent/token/:kind` (api-docs/agent#update-acl-tokens): `{"Token": "<secret>"}`. */
export const agentTokenSchema = ci({
  Token: z.string().optional(),
});

/** `PUT /v1/acl/policy[/:id]` (api-docs/acl/policies). */
export const aclPolicySchema = ci({
  ID: z.string().optional(),
  Name: z.string().optional(),
  Description: z.string().optional(),
  Rules: z.string().optional(),
  Datacenters: z.array(z.string()).nullable().optional(),
  Namespace: ignored,
  Partition: ignored,
  Hash: ignored,
  CreateIndex: ignored,
  ModifyIndex: ignored,
});
