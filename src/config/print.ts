/**
 * Printing a loaded config: YAML with each value's source as a trailing comment, secrets redacted.
 */
import { Document, isMap, isPair, isScalar, isSeq, type Node, type Pair } from 'yaml';
import { type ConfigSource, configInfo, describeSource } from './load.ts';
import { isSecretPath } from './schema.ts';

/** What a redacted value prints as. */
export const REDACTED = '[redacted]';

// Names like these are secret by convention, marked or not.
const SECRET_NAME = /(passw(or)?d|secret|token|api[-_]?key|private[-_]?key|credentials?)$/i;

/**
 * A copy of the config with secrets replaced by `[redacted]`: values marked `secret` in the schema, keys
 * named like passwords, tokens and keys, and passwords inside URLs.
 *
 * @example
 * JSON.stringify(redactConfig(config)); // safe to log
 */
export function redactConfig(config: object): Record<string, unknown> {
  const { schema } = configInfo(config);
  const walk = (v: unknown, path: string[]): unknown => {
    const last = path[path.length - 1];
    // Marks and names both count: printing one value too few is worse than one too many.
    const secret =
      (schema !== undefined && isSecretPath(schema, path)) || (last !== undefined && SECRET_NAME.test(last));
    if (secret && v !== undefined && v !== null) return REDACTED;
    if (Array.isArray(v)) return v.map((c, i) => walk(c, [...path, String(i)]));
    if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v).map(([k, c]) => [k, walk(c, [...path, k])]));
    }
    if (typeof v === 'string') return redactUrlPassword(v);
    return v;
  };
  return walk(config, []) as Record<string, unknown>;
}

/** `postgres://app:hunter2@db/app` -> `postgres://app:[redacted]@db/app`; other strings unchanged. */
export function redactUrlPassword(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/?#\s]+@/i, `$1:${REDACTED}@`);
}

/**
 * The merged config as YAML, secrets redacted, each value annotated with where it came from.
 *
 * @example
 * process.stdout.write(printConfig(loadConfig({ schema })));
 * // http:
 * //   port: 8080 # env PORT
 * // database:
 * //   url: "[redacted]" # config/production.yaml:3:8
 */
export function printConfig(config: object): string {
  const info = configInfo(config);
  const doc = new Document(redactConfig(config));
  const annotate = (node: Node | null | undefined, path: string[]) => {
    if (!isMap(node)) return;
    for (const item of node.items as Pair[]) {
      if (!isPair(item) || !isScalar(item.key)) continue;
      const p = [...path, String(item.key.value)];
      const src: ConfigSource | undefined = info.sources.get(p.join('.'));
      const value = item.value as Node | null;
      if (isMap(value) && value.items.length > 0) annotate(value, p);
      else if (src) {
        const comment = ` ${describeSource(src)}`;
        // Block sequences put the comment on the key line; scalars and empty ([] / {}) collections inline.
        if (isSeq(value) && value.items.length > 0) (item.key as Node).comment = comment;
        else if (value) {
          if (isSeq(value) || isMap(value)) value.flow = true;
          value.comment = comment;
        }
      }
    }
  };
  annotate(doc.contents as Node, []);
  const header = `# env: ${info.env}; files: ${info.files.length ? info.files.join(' < ') : 'none'} < environment\n`;
  return header + doc.toString({ lineWidth: 0 });
}
