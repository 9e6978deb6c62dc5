/**
 * The `ports.yaml` schema (zod, the project's one schema library). The JSON Schema in
 * `schema/ports.schema.json` is generated from it ({@link portsJsonSchema}) so editors complete the file;
 * a test keeps the two equal.
 */
import { z } from 'zod';

const NAME = /^[a-z][a-z0-9_-]*$/;

/** A TCP port number. */
const port = z.number().int().min(1).max(65535);

const name = (what: string) =>
  z
    .string()
    .regex(NAME, `a ${what} name: lower case letters, digits, "-" or "_", starting with a letter`)
    .meta({ description: `${what} name` });

/** An inclusive port range. */
export const rangeSchema = z
  .strictObject({
    from: port.meta({ description: 'first port of the range (inclusive)' }),
    to: port.meta({ description: 'last port of the range (inclusive)' }),
  })
  .meta({ description: 'Inclusive port range, for example { from: 8000, to: 8799 }' });

const environment = z
  .strictObject({
    range: rangeSchema,
    description: z.string().optional(),
  })
  .meta({ description: 'An environment (production, development, test, …) and the host ports it owns' });

/** One environment's port: the host (published) port, or published + container (internal) port. */
const envPort = z.union([
  port.meta({ description: 'host port (published and internal are the same)' }),
  z.strictObject({
    port: port.meta({ description: 'host (published) port' }),
    internal: port.optional().meta({ description: 'port inside the container, when it differs' }),
  }),
]);

const template = z.string().meta({
  description:
    'value written, with placeholders {port} (host port), {internal} (container port, else the host port), ' +
    '{env} and {name}. Exactly "{port}" or "{internal}" writes a number in YAML/JSON. @default "{port}"',
});

const file = z.string().min(1).meta({
  description: 'file path relative to ports.yaml; may contain {env}',
});

const keyPath = z
  .union([z.string().min(1), z.array(z.union([z.string(), z.number().int().min(0)])).min(1)])
  .meta({
    description: 'key path: "server.port", or a list of keys when a key contains a dot; may contain {env}',
  });

const envRef = z.string().optional().meta({
  description:
    'the one environment this target is for; without it the target is repeated for every environment',
});

const targetCommon = { file, env: envRef };

/** Where a value is written. */
export const targetSchema = z.discriminatedUnion('type', [
  z
    .strictObject({ type: z.literal('yaml'), ...targetCommon, key: keyPath, value: template.optional() })
    .meta({ description: 'a key in a YAML file (comments and formatting are kept)' }),
  z
    .strictObject({ type: z.literal('json'), ...targetCommon, key: keyPath, value: template.optional() })
    .meta({ description: 'a key in a JSON file (indentation is kept)' }),
  z
    .strictObject({
      type: z.literal('dotenv'),
      ...targetCommon,
      var: z.string().regex(/^[A-Za-z_{][A-Za-z0-9_{}]*$/, 'an environment variable name'),
      value: template.optional(),
    })
    .meta({ description: 'a variable in a .env file (other lines and comments are kept)' }),
  z
    .strictObject({ type: z.literal('compose-port'), ...targetCommon, service: z.string().min(1) })
    .meta({ description: 'the "published:internal" port mapping of a service in a compose file' }),
  z
    .strictObject({
      type: z.literal('compose-env'),
      ...targetCommon,
      service: z.string().min(1),
      var: z.string().min(1),
      value: template.optional(),
    })
    .meta({
      description: 'an environment variable of a compose service, e.g. a URL "http://bus:{internal}"',
    }),
]);

const allocation = {
  description: z.string().optional(),
  internal: port
    .optional()
    .meta({ description: 'port inside the container for every environment, when it differs' }),
  targets: z.array(targetSchema).optional(),
};

const component = z
  .strictObject({
    ...allocation,
    ports: z
      .record(z.string(), envPort)
      .meta({ description: "host port per environment; each must lie in that environment's range" }),
  })
  .meta({ description: 'A component (service) with one port per environment' });

const infraService = z
  .strictObject({
    ...allocation,
    port: port.optional().meta({ description: 'one host port shared by every environment' }),
    ports: z.record(z.string(), envPort).optional().meta({ description: 'host port per environment' }),
  })
  .meta({ description: 'An infrastructure service (PostgreSQL, Redis, …): `port` or `ports`' });

/** The whole `ports.yaml`. */
export const portsFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).meta({ description: 'format version; always 1' }),
    environments: z.record(name('environment'), environment),
    infrastructure: z
      .strictObject({
        range: rangeSchema,
        services: z.record(name('service'), infraService),
      })
      .optional()
      .meta({ description: 'Infrastructure services and the host range they own' }),
    components: z.record(name('component'), component).optional(),
  })
  .meta({
    title: 'Phare ports.yaml',
    description: 'Port allocation for every component in every environment, and where each port is written',
  });

/** A parsed `ports.yaml`. */
export type PortsFile = z.infer<typeof portsFileSchema>;
/** One target as written in `ports.yaml`. */
export type TargetSpec = z.infer<typeof targetSchema>;
/** An inclusive port range. */
export type PortRange = z.infer<typeof rangeSchema>;

/**
 * The JSON Schema (draft 2020-12) of `ports.yaml`, generated from the zod schema.
 *
 * @example
 * writeFileSync('schema/ports.schema.json', JSON.stringify(portsJsonSchema(), null, 2) + '\n');
 */
export function portsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(portsFileSchema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
}
