/**
 * YAML targets: a key in a YAML config, and a compose service's port mapping or environment variable.
 *
 * Why splice instead of `doc.toString()`: re-serialising a whole document can re-indent sequences or
 * re-quote strings the author wrote differently. When the key already exists we replace only the bytes of
 * its scalar (the node's source range), so every other byte, comment included, survives. Only a missing
 * key falls back to the Document API (`setIn` + `toString`), which still keeps comments.
 */
import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type Node,
  parseDocument,
  type Scalar,
  stringify,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { phareError } from '../../api/index.ts';
import type { ResolvedTarget } from '../model.ts';
import { lineAt, type TargetEditor } from './editor.ts';

/** A key path in a YAML file. */
export const yamlEditor: TargetEditor = {
  read(text, t) {
    const node = find(parse(text, t), t.key!).node;
    if (node === undefined) return undefined;
    if (!isScalar(node)) throw notScalar(t, t.key!.join('.'));
    return node.value;
  },
  write(text, t) {
    const doc = parse(text, t);
    const { node } = find(doc, t.key!);
    if (node !== undefined && !isScalar(node)) throw notScalar(t, t.key!.join('.'));
    if (isScalar(node)) return spliceScalar(text, node, t.value);
    doc.setIn(pathFor(doc, t.key!), t.value);
    return doc.toString({ lineWidth: 0 });
  },
  line(text, t) {
    return lineAt(text, (find(parse(text, t), t.key!).node as Node | undefined)?.range?.[0]);
  },
};

/** The `published:internal` mapping of a compose service. */
export const composePortEditor: TargetEditor = {
  read(text, t) {
    const { service } = composeService(text, t);
    const entry = pickPortEntry(service, t);
    if (entry === undefined) return undefined;
    const mapping = readMapping(entry);
    if (!mapping) return undefined;
    return mapping.published === '' ? mapping.target : `${mapping.published}:${mapping.target}`;
  },
  write(text, t) {
    const { doc, service } = composeService(text, t);
    const entry = pickPortEntry(service, t);
    const { port, internal } = t.allocation;
    if (entry === undefined) {
      const ports = service.get('ports', true);
      if (isSeq(ports)) ports.add(doc.createNode(`${port}:${internal}`));
      else service.set('ports', doc.createNode([`${port}:${internal}`]));
      return doc.toString({ lineWidth: 0 });
    }
    if (isScalar(entry)) {
      const old = String(entry.value);
      const proto = /\/[a-z]+$/.exec(old)?.[0] ?? '';
      const parts = old.slice(0, old.length - proto.length).split(':');
      const ip = parts.length > 2 ? `${parts.slice(0, -2).join(':')}:` : '';
      // A bare number `- 3000` becomes a quoted string: compose mappings "a:b" are safest quoted (YAML 1.1).
      const quote = entry.type === 'PLAIN' && typeof entry.value === 'number' ? 'QUOTE_DOUBLE' : undefined;
      return spliceScalar(text, entry, `${ip}${port}:${internal}${proto}`, quote);
    }
    // Long syntax: { target: 3000, published: "8000" }; edit both scalars, later offset first.
    const edits: { node: Scalar; value: string | number }[] = [];
    const published = (entry as YAMLMap).get('published', true);
    const target = (entry as YAMLMap).get('target', true);
    if (!isScalar(published) || !isScalar(target)) {
      throw targetError(t, `port entry of service ${t.service} needs published: and target:`);
    }
    edits.push({ node: published, value: typeof published.value === 'string' ? String(port) : port });
    edits.push({ node: target, value: internal });
    edits.sort((a, b) => (b.node.range?.[0] ?? 0) - (a.node.range?.[0] ?? 0));
    let out = text;
    for (const e of edits) out = spliceScalar(out, e.node, e.value);
    return out;
  },
  line(text, t) {
    const { service } = composeService(text, t);
    const entry = pickPortEntry(service, t) as Node | undefined;
    return lineAt(text, (entry ?? (service as Node)).range?.[0]);
  },
};

/** An environment variable of a compose service (map or `["K=V"]` list form). */
export const composeEnvEditor: TargetEditor = {
  read(text, t) {
    const { service } = composeService(text, t);
    const env = service.get('environment', true);
    if (isMap(env)) {
      const v = env.get(t.var!, true);
      if (v === undefined || v === null) return undefined;
      if (!isScalar(v)) throw notScalar(t, `services.${t.service}.environment.${t.var}`);
      return v.value === null ? '' : String(v.value);
    }
    if (isSeq(env)) {
      const item = listItem(env, t.var!);
      return item === undefined ? undefined : String(item.value).slice(t.var!.length + 1);
    }
    return undefined;
  },
  write(text, t) {
    const { doc, service } = composeService(text, t);
    const env = service.get('environment', true);
    const value = String(t.value);
    if (isMap(env)) {
      const v = env.get(t.var!, true);
      if (isScalar(v)) return spliceScalar(text, v, value);
      env.set(doc.createNode(t.var!), doc.createNode(value));
      return doc.toString({ lineWidth: 0 });
    }
    if (isSeq(env)) {
      const item = listItem(env, t.var!);
      if (item) return spliceScalar(text, item, `${t.var}=${value}`);
      env.add(doc.createNode(`${t.var}=${value}`));
      return doc.toString({ lineWidth: 0 });
    }
    service.set('environment', doc.createNode({ [t.var!]: value }));
    return doc.toString({ lineWidth: 0 });
  },
  line(text, t) {
    const { service } = composeService(text, t);
    const env = service.get('environment', true);
    const node = isMap(env) ? env.get(t.var!, true) : isSeq(env) ? listItem(env, t.var!) : undefined;
    return lineAt(text, ((node ?? env ?? service) as Node).range?.[0]);
  },
};

function parse(text: string, t: ResolvedTarget): Document {
  const doc = parseDocument(text, { prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    throw targetError(t, `invalid YAML${line ? ` at line ${line}` : ''}: ${err.message.split('\n')[0]}`);
  }
  return doc;
}

function find(doc: Document, keys: readonly string[]): { node: unknown } {
  let node: unknown = doc.contents;
  for (const k of keys) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === k);
      if (!pair) return { node: undefined };
      node = pair.value ?? undefined;
    } else if (isSeq(node) && /^\d+$/.test(k)) {
      node = node.items[Number(k)];
    } else return { node: undefined };
    if (node === undefined) return { node: undefined };
  }
  return { node };
}

/** The path for `setIn`: list indexes as numbers where the existing node is a sequence. */
function pathFor(doc: Document, keys: readonly string[]): (string | number)[] {
  let node: unknown = doc.contents;
  return keys.map((k) => {
    const useIndex = isSeq(node) && /^\d+$/.test(k);
    node =
      isMap(node) || isSeq(node)
        ? (node as YAMLMap | YAMLSeq).get(useIndex ? Number(k) : k, true)
        : undefined;
    return useIndex ? Number(k) : k;
  });
}

function composeService(text: string, t: ResolvedTarget): { doc: Document; service: YAMLMap } {
  const doc = parse(text, t);
  const service = find(doc, ['services', t.service!]).node;
  if (!isMap(service)) {
    throw targetError(t, `compose file has no service "${t.service}" under services:`);
  }
  return { doc, service };
}

function containerPort(entry: unknown): number | undefined {
  if (isScalar(entry)) {
    const s = String(entry.value).replace(/\/[a-z]+$/, '');
    return Number(s.split(':').at(-1));
  }
  if (isMap(entry)) return Number((entry.get('target', true) as Scalar | undefined)?.value);
  return undefined;
}

function readMapping(entry: unknown): { published: string; target: string } | undefined {
  if (isScalar(entry)) {
    const parts = String(entry.value)
      .replace(/\/[a-z]+$/, '')
      .split(':');
    if (parts.length < 2) return { published: '', target: parts[0] ?? '' };
    return { published: parts.at(-2) ?? '', target: parts.at(-1) ?? '' };
  }
  if (isMap(entry)) {
    return {
      published: String((entry.get('published', true) as Scalar | undefined)?.value ?? ''),
      target: String((entry.get('target', true) as Scalar | undefined)?.value ?? ''),
    };
  }
  return undefined;
}

/**
 * The port entry this target owns: the one whose container port is the allocation's internal port, or
 * the only entry. Several entries and none matching is ambiguous: we refuse rather than guess.
 */
function pickPortEntry(service: YAMLMap, t: ResolvedTarget): unknown {
  const ports = service.get('ports', true);
  if (ports === undefined || ports === null) return undefined;
  if (!isSeq(ports)) throw targetError(t, `services.${t.service}.ports is not a list`);
  const match = ports.items.find((e) => containerPort(e) === t.allocation.internal);
  if (match !== undefined) return match;
  if (ports.items.length === 1) return ports.items[0];
  if (ports.items.length === 0) return undefined;
  throw targetError(
    t,
    `services.${t.service}.ports has ${ports.items.length} entries and none maps container port ${t.allocation.internal}; set internal: in ports.yaml to the container port to pick one`,
  );
}

function listItem(seq: YAMLSeq, name: string): Scalar | undefined {
  const item = seq.items.find((i) => isScalar(i) && String(i.value).startsWith(`${name}=`));
  return item as Scalar | undefined;
}

/**
 * Replaces one scalar's source bytes with the new value, in the original quoting style where the value
 * allows it (a plain scalar stays plain unless the new text would read back as something else).
 */
export function spliceScalar(
  text: string,
  node: Scalar,
  value: string | number,
  forceType?: Scalar.Type,
): string {
  const range = node.range as Node['range'];
  if (!range) throw new Error('yaml scalar has no source range');
  const type = forceType ?? node.type;
  let rendered: string;
  if (typeof value === 'number') rendered = String(value);
  else if (type === 'QUOTE_DOUBLE') rendered = JSON.stringify(value);
  else if (type === 'QUOTE_SINGLE') rendered = `'${value.replace(/'/g, "''")}'`;
  else rendered = stringify(value, { lineWidth: 0 }).replace(/\n$/, '');
  return text.slice(0, range[0]) + rendered + text.slice(range[1]);
}

function notScalar(t: ResolvedTarget, key: string) {
  return targetError(t, `${key} holds a list or map, expected a single value`);
}

/** An error about one target, naming its file. */
export function targetError(t: ResolvedTarget, message: string) {
  return phareError('PHARE_ERR_INVALID_CONFIG', `${t.file}: ${message}`);
}
