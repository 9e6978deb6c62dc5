/** The agent's flags, kept free of dependencies so the CLI can describe them without loading the agent. */

/** Log levels pino understands. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every settable option, by flag name. */
export const FLAGS = {
  dev: { env: 'PHARE_DEV', describe: 'in-memory store and short check intervals' },
  'data-dir': { env: 'PHARE_DATA_DIR', describe: 'directory of the embedded store' },
  'http-addr': { env: 'PHARE_HTTP_ADDR', describe: 'HTTP API address (host:port; port 0 picks a free one)' },
  'dns-addr': { env: 'PHARE_DNS_ADDR', describe: 'DNS address (host:port; "" turns DNS off)' },
  domain: { env: 'PHARE_DOMAIN', describe: 'DNS domain' },
  recursor: { env: 'PHARE_RECURSOR', describe: 'upstream DNS servers for other names (comma list)' },
  'dns-service-ttl': {
    env: 'PHARE_DNS_SERVICE_TTL',
    describe: 'DNS TTLs per service, e.g. "web=5,api*=10,*=1"',
  },
  'dns-node-ttl': { env: 'PHARE_DNS_NODE_TTL', describe: 'DNS TTL of node records in seconds' },
  'dns-only-passing': { env: 'PHARE_DNS_ONLY_PASSING', describe: 'DNS leaves out warning instances too' },
  'dns-rate-limit': {
    env: 'PHARE_DNS_RATE_LIMIT',
    describe: 'UDP DNS answers per second per client (0 = off; default 100 beyond loopback, off on loopback)',
  },
  node: { env: 'PHARE_NODE', describe: 'node name' },
  'node-id': {
    env: 'PHARE_NODE_ID',
    describe: 'node ID, a UUID (default: generated once and kept in <data-dir>/node-id)',
  },
  'node-meta': {
    env: 'PHARE_NODE_META',
    describe: 'node metadata key:value (repeatable; env: comma list)',
    repeatable: true,
  },
  datacenter: { env: 'PHARE_DATACENTER', describe: 'datacenter name' },
  'advertise-addr': { env: 'PHARE_ADVERTISE_ADDR', describe: 'address this node is reached at' },
  'https-addr': {
    env: 'PHARE_HTTPS_ADDR',
    describe: 'HTTPS API address (host:port); needs --tls-cert-file and --tls-key-file',
  },
  'tls-cert-file': { env: 'PHARE_TLS_CERT_FILE', describe: 'PEM certificate (chain) of the HTTPS API' },
  'tls-key-file': { env: 'PHARE_TLS_KEY_FILE', describe: 'PEM private key of --tls-cert-file' },
  'tls-ca-file': {
    env: 'PHARE_TLS_CA_FILE',
    describe: 'PEM CA bundle: client certificates, and trusted by HTTPS health checks',
  },
  'tls-verify-incoming': {
    env: 'PHARE_TLS_VERIFY_INCOMING',
    describe: 'the HTTPS API requires client certificates of --tls-ca-file (the UI stays reachable)',
  },
  'allowed-hosts': {
    env: 'PHARE_ALLOWED_HOSTS',
    describe: 'more Host names the HTTP API answers to (comma list; ".example.com" allows subdomains)',
  },
  'acl-enabled': {
    env: 'PHARE_ACL_ENABLED',
    describe: 'enforce ACL tokens on the HTTP API and DNS (Consul acl.enabled)',
  },
  'acl-default-policy': {
    env: 'PHARE_ACL_DEFAULT_POLICY',
    describe: 'what a token may do where no rule says: allow (default) or deny',
  },
  'acl-initial-management-token': {
    env: 'PHARE_ACL_INITIAL_MANAGEMENT_TOKEN',
    describe: 'SecretID of a management token created at first start (replaces PUT /v1/acl/bootstrap)',
    secret: true,
  },
  'acl-enable-token-persistence': {
    env: 'PHARE_ACL_ENABLE_TOKEN_PERSISTENCE',
    describe:
      'keep the agent tokens set with PUT /v1/agent/token/<kind> across restarts (<data-dir>/acl-tokens.json, hashes only)',
  },
  'acl-token-min-expiration-ttl': {
    env: 'PHARE_ACL_TOKEN_MIN_EXPIRATION_TTL',
    describe:
      "the shortest ExpirationTTL a new token may ask for (default 1m, Consul's token_min_expiration_ttl)",
  },
  'acl-token-max-expiration-ttl': {
    env: 'PHARE_ACL_TOKEN_MAX_EXPIRATION_TTL',
    describe:
      "the longest ExpirationTTL a new token may ask for (default 24h, Consul's token_max_expiration_ttl)",
  },
  'acl-dns-token': {
    env: 'PHARE_ACL_DNS_TOKEN',
    describe: 'SecretID of the token DNS answers with (default: the anonymous token)',
    secret: true,
  },
  docker: {
    env: 'PHARE_DOCKER',
    describe:
      'register opted-in containers of this Docker engine (endpoint, default unix:///var/run/docker.sock)',
    optionalValue: true,
  },
  'log-level': { env: 'PHARE_LOG_LEVEL', describe: `log level (${LOG_LEVELS.join(', ')})` },
  'log-json': {
    env: 'PHARE_LOG_JSON',
    describe: 'log JSON lines even on a terminal (the default when stderr is not a terminal)',
  },
  store: { env: 'PHARE_STORE', describe: 'where state lives: memory, sqlite (default) or etcd (a cluster)' },
  'etcd-endpoints': {
    env: 'PHARE_ETCD_ENDPOINTS',
    describe:
      'etcd client URLs, comma list (with --store etcd), e.g. http://10.0.0.1:2379,http://10.0.0.2:2379',
  },
  'etcd-prefix': {
    env: 'PHARE_ETCD_PREFIX',
    describe: 'root of every etcd key Phare writes (default /phare)',
  },
  'etcd-ca-file': {
    env: 'PHARE_ETCD_CA_FILE',
    describe: "PEM CA that etcd's certificate chains to (https:// endpoints; default: the system roots)",
  },
  'etcd-cert-file': {
    env: 'PHARE_ETCD_CERT_FILE',
    describe: 'PEM client certificate for an etcd with --client-cert-auth (with --etcd-key-file)',
  },
  'etcd-key-file': { env: 'PHARE_ETCD_KEY_FILE', describe: 'PEM key of --etcd-cert-file' },
  'node-ttl': {
    env: 'PHARE_NODE_TTL',
    describe: "TTL of this agent's etcd lease: how soon others see it dead (default 10s, whole seconds)",
  },
  'reconnect-timeout': {
    env: 'PHARE_RECONNECT_TIMEOUT',
    describe: 'remove a node whose agent stayed away this long (default 72h, as Consul)',
  },
  'check-update-interval': {
    env: 'PHARE_CHECK_UPDATE_INTERVAL',
    describe:
      'write a check whose output changed but not its status at most this often (default 5m, as Consul; 0s: at once)',
  },
} as const;

/** A flag name. */
export type FlagName = keyof typeof FLAGS;
