/**
 * Consul DNS name forms (Consul docs, DNS interface (name forms)). Labels are read right to left: the domain, then an optional
 * datacenter (`<dc>` or `<dc>.dc`), then the kind keyword; what is left of the keyword names the thing.
 */

/** What a query name asks for. Names are lower-case, without the trailing dot. */
export type ParsedName =
  /** Not under the domain: REFUSED, or forwarded to the recursors. */
  | { kind: 'outside' }
  /** The domain itself (`consul.`): SOA and NS live here. */
  | { kind: 'apex' }
  /** Under the domain but no form we answer (including `.query`, `.connect`…): NXDOMAIN. */
  | { kind: 'invalid' }
  | { kind: 'service'; service: string; tag: string | null; dc: string | null }
  | { kind: 'node'; node: string; dc: string | null }
  /** `<hex-ip>.addr`: the SRV target of an instance that has its own IP address. */
  | { kind: 'addr'; ip: string; dc: string | null };

const KINDS = new Set(['service', 'node', 'addr', 'query', 'connect', 'ingress', 'virtual']);

/**
 * Parses a query name (lower-case, no trailing dot) against the DNS domain.
 *
 * @example
 * parseName('_web._tcp.service.dc1.consul', 'consul'); // { kind: 'service', service: 'web', tag: null, dc: 'dc1' }
 * parseName('v2.web.service.consul', 'consul');       // { kind: 'service', service: 'web', tag: 'v2', dc: null }
 * parseName('example.com', 'consul');                 // { kind: 'outside' }
 */
export function parseName(name: string, domain: string): ParsedName {
  const n = stripDot(name);
  const d = stripDot(domain);
  if (n === d) return { kind: 'apex' };
  if (d !== '' && !n.endsWith(`.${d}`)) return { kind: 'outside' };
  const body = (d === '' ? n : n.slice(0, n.length - d.length - 1)).split('.');
  if (body.some((l) => l === '')) return { kind: 'invalid' };

  let kindAt: number;
  let dc: string | null = null;
  const last = body.length - 1;
  if (body.length >= 3 && body[last] === 'dc') {
    // `<name>.<kind>.<dc>.dc.<domain>`
    dc = body[last - 1] as string;
    kindAt = last - 2;
  } else if (KINDS.has(body[last] as string)) {
    kindAt = last;
  } else if (body.length >= 2 && KINDS.has(body[last - 1] as string)) {
    dc = body[last] as string;
    kindAt = last - 1;
  } else if (body.length >= 2 && body.length <= 3 && body[0]?.startsWith('_') && body[1]?.startsWith('_')) {
    // RFC 2782 without the `service` label: `_web._tcp[.dc1].consul` (Consul accepts it for SRV)
    return rfc2782(body[0], body[1], body.length === 3 ? (body[2] as string) : null);
  } else {
    return { kind: 'invalid' };
  }
  const kind = body[kindAt] as string;
  const left = body.slice(0, kindAt);
  if (left.length === 0) return { kind: 'invalid' };
  switch (kind) {
    case 'service': {
      if (left.length === 2 && left[0]?.startsWith('_') && left[1]?.startsWith('_')) {
        return rfc2782(left[0], left[1], dc);
      }
      const service = left[left.length - 1] as string;
      // A tag may contain dots: every label left of the service name belongs to it (§10.2).
      const tag = left.length > 1 ? left.slice(0, -1).join('.') : null;
      return { kind: 'service', service, tag, dc };
    }
    case 'node':
      // Node names may contain dots too.
      return { kind: 'node', node: left.join('.'), dc };
    case 'addr': {
      const ip = left.length === 1 ? hexToIp(left[0] as string) : null;
      return ip ? { kind: 'addr', ip, dc } : { kind: 'invalid' };
    }
    default:
      return { kind: 'invalid' };
  }
}

/** `_<service>._<tag>`: `_tcp` means "no tag filter"; every other protocol label is a tag (Consul quirk). */
function rfc2782(svcLabel: string, tagLabel: string, dc: string | null): ParsedName {
  const service = svcLabel.slice(1);
  const tag = tagLabel.slice(1);
  if (service === '' || tag === '') return { kind: 'invalid' };
  return { kind: 'service', service, tag: tag === 'tcp' ? null : tag, dc };
}

/**
 * `0a000001` -> `10.0.0.1`; 32 hex digits -> an IPv6 address. Null for anything else.
 *
 * @example
 * hexToIp('7f000001'); // '127.0.0.1'
 */
export function hexToIp(hex: string): string | null {
  if (!/^[0-9a-f]+$/.test(hex)) return null;
  if (hex.length === 8) {
    const b = Buffer.from(hex, 'hex');
    return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  }
  if (hex.length === 32) {
    const parts: string[] = [];
    for (let i = 0; i < 32; i += 4) parts.push(hex.slice(i, i + 4));
    return parts.join(':');
  }
  return null;
}

/**
 * The `.addr` label of an IP address (the inverse of {@link hexToIp}).
 *
 * @example
 * ipToHex('10.0.0.1'); // '0a000001'
 */
export function ipToHex(ip: string, family: 4 | 6): string {
  if (family === 4) return Buffer.from(ip.split('.').map(Number)).toString('hex');
  return ipv6Bytes(ip).toString('hex');
}

/**
 * The 16 bytes of an IPv6 address in text form (`::` and an embedded IPv4 tail allowed). The caller has
 * checked it with `net.isIPv6`.
 *
 * @example
 * ipv6Bytes('::1'); // <Buffer 00 … 01>
 */
export function ipv6Bytes(ip: string): Buffer {
  const out = Buffer.alloc(16);
  let text = ip;
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  const words: number[] = [];
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const toWords = (s: string): number[] => {
    if (s === '') return [];
    const w: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const b = part.split('.').map(Number);
        w.push(((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0));
      } else {
        w.push(Number.parseInt(part, 16));
      }
    }
    return w;
  };
  const h = toWords(head);
  const t = tail === undefined ? [] : toWords(tail);
  words.push(...h);
  for (let i = h.length + t.length; i < 8; i++) words.push(0);
  words.push(...t);
  for (let i = 0; i < 8; i++) out.writeUInt16BE((words[i] ?? 0) & 0xffff, i * 2);
  return out;
}

function stripDot(s: string): string {
  let out = s.toLowerCase();
  if (out.endsWith('.')) out = out.slice(0, -1);
  if (out.startsWith('.')) out = out.slice(1);
  return out;
}
