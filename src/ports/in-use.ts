/**
 * `phare ports in-use`: the TCP sockets listening on this host (Linux `/proc/net/tcp` and `tcp6`, see
 * proc(5)), each marked with the component ports.yaml gives that port to. Listeners on a port inside a
 * managed range that ports.yaml does not allocate are flagged: something outside the file holds a port
 * the file may hand out next.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Allocation, type PortsModel, rangeOf } from './model.ts';

/** A listening TCP socket. */
export interface Listener {
  family: 4 | 6;
  address: string;
  port: number;
  uid: number;
  inode: number;
  /** Owning process, when /proc lets us see it. */
  pid?: number;
  command?: string;
}

/** A listener as ports.yaml sees it. */
export interface InUseEntry extends Listener {
  /** `allocated`: ports.yaml gives the port to `owners`; `unallocated`: inside a managed range but not
   *  in the file (a conflict waiting to happen); `outside`: not in any range. */
  status: 'allocated' | 'unallocated' | 'outside';
  owners: Allocation[];
  /** Range the port falls in (environment name or `infrastructure`). */
  range?: string;
}

const LISTEN = '0A';

/**
 * Parses the text of `/proc/net/tcp` (family 4) or `/proc/net/tcp6` (family 6) into listening sockets.
 *
 * @example
 * parseProcNetTcp(readFileSync('/proc/net/tcp', 'utf8'), 4);
 */
export function parseProcNetTcp(text: string, family: 4 | 6): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [addrHex, portHex] = f[1]!.split(':');
    if (!addrHex || !portHex) continue;
    out.push({
      family,
      address: family === 4 ? ipv4(addrHex) : ipv6(addrHex),
      port: Number.parseInt(portHex, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** Options of {@link listListeners}. */
export interface ListListenersOptions {
  /** @default "/proc" (tests point it elsewhere) */
  procRoot?: string;
  /** Look up the owning process of each socket (scans /proc/<pid>/fd). @default true */
  processes?: boolean;
}

/**
 * Every listening TCP socket on this host, sorted by port. Empty where `/proc/net/tcp` does not exist
 * (not Linux).
 *
 * @example
 * for (const l of await listListeners()) console.log(l.address, l.port);
 */
export async function listListeners(options: ListListenersOptions = {}): Promise<Listener[]> {
  const proc = options.procRoot ?? '/proc';
  const read = (f: string) => readFile(join(proc, 'net', f), 'utf8').catch(() => '');
  const [tcp, tcp6] = await Promise.all([read('tcp'), read('tcp6')]);
  const listeners = [...parseProcNetTcp(tcp, 4), ...parseProcNetTcp(tcp6, 6)];
  if (options.processes !== false && listeners.length > 0) await attachProcesses(proc, listeners);
  return listeners.sort(
    (a, b) => a.port - b.port || a.family - b.family || a.address.localeCompare(b.address),
  );
}

/**
 * Marks each listener with the allocations that own its port and the range it falls in.
 *
 * @example
 * const entries = annotateListeners(model, await listListeners());
 */
export function annotateListeners(model: PortsModel, listeners: Listener[]): InUseEntry[] {
  const ranges = Object.entries(model.config.environments).map(([name, e]) => ({ name, range: e.range }));
  if (model.config.infrastructure)
    ranges.push({ name: 'infrastructure', range: model.config.infrastructure.range });
  return listeners.map((l) => {
    const owners = model.allocations.filter((a) => a.port === l.port);
    const range =
      (owners[0] && rangeOf(model.config, owners[0])?.name) ??
      ranges.find((r) => l.port >= r.range.from && l.port <= r.range.to)?.name;
    const status = owners.length > 0 ? 'allocated' : range ? 'unallocated' : 'outside';
    return { ...l, status, owners, ...(range ? { range } : {}) };
  });
}

function ipv4(hex: string): string {
  // Four bytes in host (little-endian) order.
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255].join('.');
}

function ipv6(hex: string): string {
  // Four 32-bit words, each in host (little-endian) byte order.
  let bytes = '';
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    bytes += word.slice(6, 8) + word.slice(4, 6) + word.slice(2, 4) + word.slice(0, 2);
  }
  const groups = bytes.match(/.{4}/g)!.map((g) => g.toLowerCase());
  // Let URL canonicalise (zero compression, IPv4-mapped form) rather than re-implementing RFC 5952.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

async function attachProcesses(proc: string, listeners: Listener[]): Promise<void> {
  const byInode = new Map<number, Listener[]>();
  for (const l of listeners) byInode.set(l.inode, [...(byInode.get(l.inode) ?? []), l]);
  const pids = (await readdir(proc).catch(() => [] as string[])).filter((d) => /^\d+$/.test(d));
  await Promise.all(
    pids.map(async (pid) => {
      // Other users' fd directories are unreadable without root: those sockets stay without a process.
      const fds = await readdir(join(proc, pid, 'fd')).catch(() => [] as string[]);
      for (const fd of fds) {
        const link = await readlink(join(proc, pid, 'fd', fd)).catch(() => '');
        const m = /^socket:\[(\d+)\]$/.exec(link);
        const owned = m ? byInode.get(Number(m[1])) : undefined;
        if (!owned) continue;
        const comm = (await readFile(join(proc, pid, 'comm'), 'utf8').catch(() => '')).trim();
        for (const l of owned) {
          l.pid = Number(pid);
          if (comm) l.command = comm;
        }
      }
    }),
  );
}
