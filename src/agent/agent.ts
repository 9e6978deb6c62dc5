/**
 * Agent wiring: start and stop order of the store, catalog, health checks, HTTP API and DNS.
 *
 * Start: store -> catalog -> (etcd: join the cluster) -> health -> KV state and sessions -> HTTP -> DNS ->
 *        Docker watcher (`--docker`).
 * Stop:  Docker watcher (its writes finish) -> HTTP stops accepting and finishes in-flight requests -> DNS ->
 *        health -> (etcd: leave) -> sessions -> KV (queued writes settle) -> catalog (pending writes become
 *        durable) -> store closed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CONSUL_VERSION, phareError } from '../api/index.ts';
import { Acl } from './acl/index.ts';
import { Catalog } from './catalog/index.ts';
import { createHealthChecker } from './checks/index.ts';
import { type Clock, systemClock } from './clock.ts';
import { type Cluster, joinCluster } from './cluster/index.ts';
import { type AgentConfig, type HostPort, isLoopback, namedBySource, resolveNodeId } from './config/index.ts';
import { createDnsServer, type DnsServer } from './dns/index.ts';
import { createDockerWatcher, type DockerWatcher } from './docker/index.ts';
import {
  type ClusterView,
  createHttpApi,
  type HttpApi,
  loadCa,
  loadTls,
  type TlsFiles,
} from './http/index.ts';
import { KvState } from './kv/index.ts';
import { createAgentLogger, logLifecycle } from './logger.ts';
import { createAgentMetrics } from './metrics.ts';
import { createSessions, type Sessions } from './sessions/index.ts';
import {
  createEtcdStore,
  createMemoryStore,
  createSqliteStore,
  type EtcdStore,
  openDataDir,
  type Store,
} from './store/index.ts';

/**
 * What a non-loopback bind opens to the network (issue 14): without ACLs that deny by default, anyone who
 * can connect may change state. Consul's own docs say the same of a default agent.
 */
export function exposureWarnings(config: AgentConfig): string[] {
  const out: string[] = [];
  const { httpAddr, dnsAddr } = config;
  // default-deny ACLs close the API: an anonymous request may then do only what the anonymous token's policies say
  if (config.aclEnabled && config.aclDefaultPolicy === 'deny') return out;
  if (config.httpsAddr && !isLoopback(config.httpsAddr.host) && !config.tlsVerifyIncoming) {
    out.push(
      `HTTPS API on ${config.httpsAddr.host}:${config.httpsAddr.port} is reachable beyond this machine without ACLs ` +
        'or client certificates: anyone who can connect can change state. --tls-verify-incoming requires certificates of --tls-ca-file.',
    );
  }
  if (!isLoopback(httpAddr.host)) {
    out.push(
      `HTTP API on ${httpAddr.host}:${httpAddr.port} is reachable beyond this machine without ACLs or TLS: ` +
        'anyone who can connect can register and deregister services (the consul service too), set checks, ' +
        'put nodes in maintenance and read the whole catalog. Bind --http-addr to 127.0.0.1, firewall the port, ' +
        'or turn on ACLs (--acl-enabled --acl-default-policy deny, docs/security.md).',
    );
  }
  if (dnsAddr && !isLoopback(dnsAddr.host)) {
    out.push(
      `DNS on ${dnsAddr.host}:${dnsAddr.port} answers anyone who can reach it: every service, node and address ` +
        'in the catalog can be listed by name (UDP answers are rate-limited per client address, --dns-rate-limit).',
    );
  }
  return out;
}

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /** Resolved config (see `resolveAgentConfig`). */
  config: AgentConfig;
  /** @default a pino logger at `config.logLevel` writing to stderr */
  logger?: Logger;
  /** @default memory in dev mode, else sqlite under `config.dataDir` */
  store?: Store;
  /** @default the system clock */
  clock?: Clock;
  /** How often the `--docker` watcher reconciles in full besides (re)connects. @default 30000 */
  dockerResyncIntervalMs?: number;
  /** With `--store etcd`: cluster timings (tests shorten them). */
  cluster?: { aeIntervalMs?: number; reapIntervalMs?: number; probeIntervalMs?: number };
}

/** A running agent. */
export interface RunningAgent {
  readonly config: AgentConfig;
  readonly catalog: Catalog;
  /** KV entries and sessions. */
  readonly kv: KvState;
  /** The session manager (what `/v1/session` serves). */
  readonly sessions: Sessions;
  /** ACL tokens and policies. */
  readonly acl: Acl;
  /** `http://host:port` of the HTTP API (the real port when started on port 0). */
  readonly httpUrl: string;
  readonly httpAddress: HostPort;
  /** `https://host:port` of the HTTPS API, or null without `--https-addr`. */
  readonly httpsUrl: string | null;
  readonly httpsAddress: HostPort | null;
  /**
   * Re-reads the TLS files (SIGHUP): new connections get the new certificate, open ones keep theirs. A bad
   * file keeps the old one; either way the outcome is logged. False when nothing was reloaded.
   */
  reloadTls(): boolean;
  /** Where DNS listens, or null when turned off. */
  readonly dnsAddress: HostPort | null;
  /** The container watcher when started with `--docker`. */
  readonly docker?: DockerWatcher;
  /** Stops in order; idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an agent.
 *
 * @example
 * const agent = await startAgent({ config: resolveAgentConfig({ flags: { dev: true, 'http-addr': '127.0.0.1:0' } }) });
 * console.log(agent.httpUrl); // http://127.0.0.1:41234
 * await agent.close();
 */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { config } = options;
  const logger = options.logger ?? createAgentLogger(config); // no base component: children add theirs, pino would repeat the key
  // TLS files are read before anything listens: a bad file stops the start, naming its flag.
  const tlsFiles: TlsFiles | null =
    config.httpsAddr && config.tlsCertFile && config.tlsKeyFile
      ? { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, caFile: config.tlsCaFile ?? undefined }
      : null;
  const tlsMaterial = tlsFiles ? loadTls(tlsFiles) : null;
  const checkCa = config.tlsCaFile ? loadCa(config.tlsCaFile) : undefined;
  // A persistent agent locks its data dir before touching anything in it (issue 11 §3): a second agent on
  // the same dir stops here with PHARE_ERR_LOCKED naming the holder's PID.
  const dataDir = config.store === 'memory' ? undefined : openDataDir(config.dataDir);
  let store: Store | undefined;
  let catalog: Catalog;
  try {
    // before the store opens: a bad node-id file is a start-up error that leaves nothing open
    const nodeId = resolveNodeId(config);
    store =
      options.store ??
      (config.store === 'etcd'
        ? createEtcdStore({
            endpoints: config.etcdEndpoints,
            prefix: config.etcdPrefix,
            ...etcdTls(config),
            logger: logger.child({ component: 'etcd' }),
            ...(options.cluster?.probeIntervalMs ? { probeIntervalMs: options.cluster.probeIntervalMs } : {}),
          })
        : dataDir
          ? createSqliteStore({
              path: join(config.dataDir, 'phare.db'),
              existing: dataDir.storeCreated !== undefined,
              onWarning: (message) => logger.warn({ component: 'store' }, message),
            })
          : createMemoryStore());
    catalog = await Catalog.open({
      store,
      node: {
        name: config.node,
        id: nodeId,
        address: config.advertiseAddr,
        // Consul's own node meta, then the operator's --node-meta
        meta: { 'consul-network-segment': '', 'consul-version': CONSUL_VERSION, ...config.nodeMeta },
      },
      datacenter: config.datacenter,
      clock: options.clock,
      onBadRow: (table, key, problem) =>
        logger.warn({ component: 'catalog', table, key }, `store: ignoring a ${table} row: ${problem}`),
    });
    // From now on a missing or emptied phare.db is damage, not a new data dir (issue 11 §9).
    if (dataDir && !options.store && config.store === 'sqlite') dataDir.markStoreCreated();
  } catch (err) {
    await store?.close().catch(() => {});
    dataDir?.close();
    throw err;
  }
  const openStore = store;
  // Lifecycle lines at info (issue 18): registered/deregistered and why, check status changes, agents
  // joining or failing. Subscribed before the cluster join, so this agent's own join is among them.
  logLifecycle(catalog, logger.child({ component: 'catalog' }));
  let cluster: Cluster | undefined;
  if (openStore.kind === 'etcd') {
    try {
      cluster = await joinCluster({
        store: openStore as EtcdStore,
        catalog,
        logger,
        clock: options.clock ?? systemClock,
        nodeTtlMs: config.nodeTtlMs,
        reconnectTimeoutMs: config.reconnectTimeoutMs,
        minDeregisterAfterMs: config.minDeregisterAfterMs,
        ...options.cluster,
      });
    } catch (err) {
      await catalog.close();
      await openStore.close();
      dataDir?.close();
      throw err;
    }
  }
  const health = createHealthChecker({
    httpCa: checkCa,
    catalog,
    logger,
    clock: options.clock,
    reapIntervalMs: config.reapIntervalMs,
    minDeregisterAfterMs: config.minDeregisterAfterMs,
    minIntervalMs: config.minCheckIntervalMs,
    checkUpdateIntervalMs: config.checkUpdateIntervalMs,
  });
  health.start();
  const kv = await KvState.open({ store, clock: options.clock, minIndex: catalog.index });
  const joined = cluster;
  const sessions = createSessions({
    state: kv,
    catalog,
    logger: logger.child({ component: 'sessions' }),
    // On a cluster the agent elected to reap dead agents also invalidates sessions (src/agent/sessions).
    ...(joined ? { isReaper: () => joined.isReaper() } : {}),
    ...(options.cluster?.reapIntervalMs !== undefined
      ? { reapIntervalMs: options.cluster.reapIntervalMs }
      : {}),
  });
  sessions.start();
  let acl: Acl;
  try {
    acl = await Acl.open({
      store,
      enabled: config.aclEnabled,
      defaultPolicy: config.aclDefaultPolicy,
      initialManagementToken: config.aclInitialManagementToken ?? undefined,
      dnsToken: config.aclDnsToken ?? undefined,
      tokenExpiry: config.aclTokenExpiry,
      tokenFile: config.aclEnableTokenPersistence ? join(config.dataDir, 'acl-tokens.json') : undefined,
      minIndex: catalog.index,
      clock: options.clock,
      logger: logger.child({ component: 'acl' }),
    });
  } catch (err) {
    await health.stop();
    await cluster?.leave();
    sessions.stop();
    await kv.close();
    await catalog.close();
    await openStore.close();
    dataDir?.close();
    throw err;
  }
  let http: HttpApi | undefined;
  let dns: DnsServer | undefined;
  let docker: DockerWatcher | undefined;
  let https: HttpApi | undefined;
  try {
    const metrics = createAgentMetrics(catalog);
    metrics.gauge(
      'phare_health_checks_scheduled',
      'Health checks this agent runs',
      () => health.stats().checks,
    );
    metrics.gauge(
      'phare_health_checks_running',
      'Health check probes in flight',
      () => health.stats().running,
    );
    // the HTTP listener's connection cap at work (issue 11 §6): open now, and since start displaced to make
    // room for a new connection or closed because every open one was serving a request
    metrics.gauge(
      'phare_http_connections',
      'HTTP API connections: open now; evicted and refused since start (connections.ts)',
      () => {
        const c = http?.connections() ?? { open: 0, evicted: 0, refused: 0 };
        return { open: c.open, evicted: c.evicted, refused: c.refused };
      },
      'state',
    );
    metrics.gauge(
      'phare_health_check_slot_waits',
      'Check runs that waited for a probe slot since start (slots or their target share were taken)',
      () => health.stats().slotWaits,
    );
    metrics.gauge(
      'phare_health_check_lateness_ms',
      'How late check runs started versus their schedule, over recent runs',
      () => {
        const l = health.stats().lateness;
        return { p50: l.p50, p99: l.p99, max: l.max };
      },
      'quantile',
    );
    let dnsAddress: HostPort | null = null;
    // what the HTTP and HTTPS listeners share (the HTTPS one adds its TLS material and has no cluster view)
    const apiOptions = {
      catalog,
      kv,
      sessions,
      acl,
      config,
      metrics,
      dnsAddress: () => dnsAddress,
      onTtlUpdate: (id: string) => health.touchTtl(id),
    };
    http = await createHttpApi({
      ...apiOptions,
      logger: logger.child({ component: 'http' }),
      ...(cluster ? { cluster: clusterView(openStore as EtcdStore, cluster) } : {}),
    });
    // A port in use is named as the user set it: --http-addr, PHARE_HTTP_ADDR or the config file's key.
    const rethrowNamed = (err: unknown): never => {
      throw namedBySource(err, config);
    };
    const addr = await http.listen(config.httpAddr).catch(rethrowNamed);
    const hostOf = (h: string) => (h.includes(':') ? `[${h}]` : h);
    const httpUrl = `http://${hostOf(addr.host)}:${addr.port}`;
    let httpsAddress: HostPort | null = null;
    let httpsUrl: string | null = null;
    if (config.httpsAddr && tlsMaterial) {
      https = await createHttpApi({
        ...apiOptions,
        logger: logger.child({ component: 'https' }),
        tls: { material: tlsMaterial, verifyIncoming: config.tlsVerifyIncoming },
      });
      httpsAddress = await https.listen(config.httpsAddr).catch(rethrowNamed);
      httpsUrl = `https://${hostOf(httpsAddress.host)}:${httpsAddress.port}`;
    }
    if (config.dnsAddr) {
      dns = createDnsServer({
        catalog,
        logger: logger.child({ component: 'dns' }),
        domain: config.domain,
        datacenter: config.datacenter,
        recursors: [...config.recursors],
        serviceTtlSec: { ...config.dnsServiceTtlSec },
        nodeTtlSec: config.dnsNodeTtlSec,
        onlyPassing: config.dnsOnlyPassing,
        udpRateLimit: config.dnsRateLimit ?? undefined,
        // the DNS token is resolved per query: a policy given to it later applies at once
        authorizer: config.aclEnabled ? () => acl.dnsAuthorizer() : undefined,
      });
      dnsAddress = await dns.listen(config.dnsAddr).catch(rethrowNamed);
    }
    if (config.dockerSocket) {
      // after HTTP is up: an unreachable engine is retried in the background, never a start-up failure
      docker = createDockerWatcher({
        catalog,
        socketPath: config.dockerSocket,
        logger: logger.child({ component: 'docker' }),
        clock: options.clock,
        resyncIntervalMs: options.dockerResyncIntervalMs,
      });
    }
    for (const line of exposureWarnings(config)) logger.warn(line);
    const dnsAcl = dnsAddress ? acl.dnsWarning() : undefined;
    if (dnsAcl) logger.warn(dnsAcl);
    logger.info(
      { httpUrl, httpsUrl, dns: dnsAddress, store: store.kind, node: config.node },
      'agent started',
    );
    let closing: Promise<void> | undefined;
    const api = http;
    const dnsServer = dns;
    const watcher = docker;
    const httpsApi = https;
    return {
      config,
      catalog,
      kv,
      sessions,
      acl,
      httpUrl,
      httpAddress: addr,
      dnsAddress,
      docker: watcher,
      httpsUrl,
      httpsAddress,
      reloadTls() {
        if (!httpsApi || !tlsFiles) {
          logger.warn('SIGHUP: no HTTPS listener, no TLS certificates to reload');
          return false;
        }
        try {
          httpsApi.reloadTls(loadTls(tlsFiles));
        } catch (err) {
          logger.error(`TLS reload failed, the old certificate stays in use: ${(err as Error).message}`);
          return false;
        }
        logger.info({ certFile: tlsFiles.certFile }, 'TLS certificates reloaded');
        return true;
      },
      close() {
        closing ??= (async () => {
          await watcher?.stop(); // its writes finish before the catalog closes
          await api.close();
          await httpsApi?.close();
          await dnsServer?.close();
          await health.stop();
          await cluster?.leave();
          sessions.stop();
          await acl.close();
          await kv.close();
          await catalog.close();
          await openStore.close();
          dataDir?.close();
          logger.info('agent stopped');
        })();
        return closing;
      },
    };
  } catch (err) {
    await docker?.stop().catch(() => {});
    await http?.close().catch(() => {});
    await https?.close().catch(() => {});
    await dns?.close().catch(() => {});
    await health.stop();
    await cluster?.leave();
    sessions.stop();
    await acl.close();
    await kv.close();
    await catalog.close();
    await openStore.close();
    dataDir?.close();
    throw err;
  }
}

/** TLS to etcd from `--etcd-*-file`; a file that cannot be read stops the start naming its flag. */
function etcdTls(config: AgentConfig): { tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } } {
  if (!config.etcdCaFile && !config.etcdCertFile) return {};
  const read = (path: string, flag: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `--${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  };
  return {
    tls: {
      ...(config.etcdCaFile ? { ca: read(config.etcdCaFile, 'etcd-ca-file') } : {}),
      ...(config.etcdCertFile ? { cert: read(config.etcdCertFile, 'etcd-cert-file') } : {}),
      ...(config.etcdKeyFile ? { key: read(config.etcdKeyFile, 'etcd-key-file') } : {}),
    },
  };
}

/** What the HTTP API shows of an etcd cluster: etcd's leader and members, the agents' membership. */
function clusterView(store: EtcdStore, cluster: Cluster): ClusterView {
  const hostPortOf = (url: string) => url.replace(/^https?:\/\//, '').replace(/\/$/, '');
  return {
    knownLeader: () => store.health().knownLeader,
    lastContactMs: () => store.health().lastContactMs,
    leader: () => {
      const h = store.health();
      return h.knownLeader && h.leader ? hostPortOf(h.leader) : '';
    },
    peers: () => store.health().peers.map(hostPortOf),
    members: () => cluster.members(),
  };
}
