/**
 * The request guard (issue 14, "Browser and network safety"): on by default, no configuration.
 *
 * 1. **Host header** (DNS rebinding): a page on `evil.example` whose name is re-pointed at 127.0.0.1 talks
 *    to the agent *same-origin* in the browser's eyes; only the Host header still says `evil.example`. The
 *    agent answers only Host headers that name it: IP literals, `localhost` (and `*.localhost`, which
 *    browsers always resolve to loopback, RFC 6761 §6.3), its node name (and `<node>.node.<domain>`), and
 *    the names given with `--allowed-hosts`, and single-label names (`agent`, `consul`: what Docker Compose
 *    and Kubernetes services are called on their networks). A rebinding page needs a name its author
 *    controls in public DNS, which always has a dot; a dotless name is resolved only by the victim's own
 *    resolver (hosts file, Docker's embedded DNS, search domains the network owns). A request without Host
 *    (HTTP/1.0 tools) is not a browser's.
 * 2. **Cross-origin writes**: `<img>`, `<script>`, forms, no-cors `fetch` and beacons are sent without a
 *    CORS preflight. Browsers mark every request with `Sec-Fetch-Site` (all current engines) and
 *    cross-origin ones with `Origin`; non-browser clients (curl, python-consul, the SDK) send neither. A
 *    request that changes state — any method but GET/HEAD/OPTIONS, and the GET forms of deregister and
 *    check pass/warn/fail that python-consul 0.7.1 sends — is refused when the browser says it comes from
 *    another origin. Reads stay open: no CORS headers are sent, so another origin cannot read the answer.
 *
 * Consul has neither check (its docs tell users to keep the agent off untrusted networks); see
 * docs/security.md.
 */

import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';

/** Options of {@link createRequestGuard}. */
export interface RequestGuardOptions {
  /** The agent's node name (answers as a Host too). */
  node: string;
  /** The DNS domain (for `<node>.node.<domain>`). @default "consul" */
  domain?: string;
  /** More host names the agent answers to (`--allowed-hosts`); `.example.com` allows every subdomain. @default [] */
  allowedHosts?: readonly string[];
}

/** Why a request was refused: a 403 text, or null when it may go on. */
export type GuardVerdict = string | null;

/** The two checks, used by server.ts in an onRequest hook. */
export interface RequestGuard {
  /** Refuses a Host header that does not name the agent (a fastify request, or node:http's own). */
  checkHost(req: { headers: IncomingHttpHeaders }): GuardVerdict;
  /** Refuses a state change a browser sent from another origin. `writesOnGet`: the route changes state on GET. */
  checkOrigin(req: FastifyRequest, writesOnGet: boolean): GuardVerdict;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Host header values whose verdict {@link createRequestGuard} keeps. */
const HOSTS_SEEN_MAX = 256;

/** Splits a Host header into the name (lower-case, no brackets) and keeps the port out of it. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(1, end);
  }
  const colon = h.indexOf(':');
  // more than one colon and no brackets: a bare IPv6 literal (not valid in Host, but unambiguous)
  if (colon >= 0 && h.indexOf(':', colon + 1) >= 0) return h;
  return (colon >= 0 ? h.slice(0, colon) : h).replace(/\.$/, '');
}

/**
 * Builds the guard.
 *
 * @example
 * const guard = createRequestGuard({ node: 'web-1', allowedHosts: ['consul.internal'] });
 * guard.checkHost(req); // null, or the 403 text
 */
export function createRequestGuard(options: RequestGuardOptions): RequestGuard {
  const domain = (options.domain ?? 'consul').toLowerCase();
  const node = options.node.toLowerCase();
  const exact = new Set([node, `${node}.node.${domain}`, `${node}.node.${domain}.`, 'localhost']);
  const suffixes = ['.localhost'];
  for (const raw of options.allowedHosts ?? []) {
    const h = raw.trim().toLowerCase().replace(/\.$/, '');
    if (h === '') continue;
    if (h.startsWith('.') || h.startsWith('*.')) suffixes.push(h.slice(h.indexOf('.')));
    else exact.add(h);
  }
  const allowed = (name: string) =>
    isIP(name) !== 0 ||
    exact.has(name) ||
    (name !== '' && !name.includes('.')) ||
    suffixes.some((s) => name.endsWith(s) && name.length > s.length);

  // Host headers seen and whether they name the agent: clients send the same one or two on every
  // request, so the parse is done once per value (bounded: a flood of made-up names only empties it).
  const seen = new Map<string, boolean>();
  return {
    checkHost(req) {
      const host = req.headers.host;
      if (host === undefined || host === '') return null;
      let ok = seen.get(host);
      if (ok === undefined) {
        ok = allowed(hostName(host));
        if (seen.size >= HOSTS_SEEN_MAX) seen.clear();
        seen.set(host, ok);
      }
      if (ok) return null;
      return (
        `Host ${JSON.stringify(host)} does not name this agent: it answers to IP addresses, localhost, ` +
        `single-label names and its node name (${JSON.stringify(options.node)}); add other names with --allowed-hosts ` +
        '(DNS-rebinding protection, docs/security.md)'
      );
    },
    checkOrigin(req, writesOnGet) {
      if (READ_METHODS.has(req.method) && !(writesOnGet && req.method === 'GET')) return null;
      const site = header(req, 'sec-fetch-site');
      const origin = header(req, 'origin');
      let from: string | undefined;
      if (site !== undefined) {
        // `none`: the user typed the URL or opened a bookmark; `same-origin`: the agent's own UI.
        if (site !== 'same-origin' && site !== 'none') from = `Sec-Fetch-Site: ${site}`;
      }
      if (from === undefined && origin !== undefined) {
        if (origin === 'null' || !sameOrigin(origin, req)) from = `Origin: ${origin}`;
      }
      if (from === undefined && site === undefined && origin === undefined) {
        // a browser without Fetch Metadata (Safari before 16.4) still sends Referer on most requests
        const referer = header(req, 'referer');
        if (referer !== undefined && !sameOrigin(referer, req)) from = `Referer: ${referer}`;
      }
      if (from === undefined) return null;
      return (
        `Cross-origin request refused: ${req.method} ${req.url.split('?')[0]} changes state and a browser sent it ` +
        `from another origin (${from}); call the API from a program, or from the agent's own UI (docs/security.md)`
      );
    },
  };
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Whether `url`'s origin is the agent's own (same scheme, host and port as this request). */
function sameOrigin(url: string, req: FastifyRequest): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https:' : 'http:';
  try {
    // through URL too, so a default port written out (`:80`) compares equal to none
    return u.protocol === scheme && u.host === new URL(`${scheme}//${req.headers.host ?? ''}`).host;
  } catch {
    return false;
  }
}
