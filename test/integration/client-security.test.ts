/**
 * The SDK and the CLI against an agent with TLS client verification and default-deny ACLs (issue 14), set up
 * the way users set up Consul's CLI: `CONSUL_HTTP_ADDR` + `CONSUL_HTTP_SSL`, `CONSUL_CACERT`,
 * `CONSUL_CLIENT_CERT`/`CONSUL_CLIENT_KEY` (or registrator's `CONSUL_TLSCERT`/`CONSUL_TLSKEY`),
 * `CONSUL_TLS_SERVER_NAME`, and the token from `…_HTTP_TOKEN` or `…_HTTP_TOKEN_FILE`. Certificates are made
 * by the test with Debian's openssl.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { type RunningAgent, startAgent } from '../../src/agent/index.ts';
import { createConsulClient } from '../../src/client/index.ts';
import { NODE_BIN, REPO_ROOT } from '../helpers/agent.ts';
import { makeTestCa, type TestCa } from '../helpers/certs.ts';
import { dependencySkip } from '../helpers/requires.ts';

const skip = dependencySkip(
  existsSync('/usr/bin/openssl') ? undefined : '/usr/bin/openssl (apt-get install openssl)',
);
const MGMT = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

let ca: TestCa;
let client: { certFile: string; keyFile: string };
let agent: RunningAgent;
let env: Record<string, string>;

before(async () => {
  if (skip) return;
  ca = makeTestCa('Client security CA');
  const server = ca.leaf('agent', { san: 'IP:127.0.0.1,DNS:localhost' });
  client = ca.leaf('sdk', { client: true });
  agent = await startAgent({
    config: resolveAgentConfig({
      flags: {
        dev: true,
        'http-addr': '127.0.0.1:0',
        'dns-addr': '',
        'https-addr': '127.0.0.1:0',
        'tls-cert-file': server.certFile,
        'tls-key-file': server.keyFile,
        'tls-ca-file': ca.caFile,
        'tls-verify-incoming': true,
        'acl-enabled': true,
        'acl-default-policy': 'deny',
        'acl-initial-management-token': MGMT,
        node: 'secure-node',
      },
      env: {},
    }),
    logger: pino({ level: 'silent' }),
  });
  env = {
    CONSUL_HTTP_ADDR: `127.0.0.1:${agent.httpsAddress?.port}`,
    CONSUL_HTTP_SSL: 'true',
    CONSUL_CACERT: ca.caFile,
    CONSUL_CLIENT_CERT: client.certFile,
    CONSUL_CLIENT_KEY: client.keyFile,
    CONSUL_HTTP_TOKEN: MGMT,
  };
});
after(async () => {
  await agent?.close();
  ca?.remove();
});

describe('SDK: TLS and token from the environment', { skip }, () => {
  test('CONSUL_* variables: CA, client certificate, token — agent/self and a registration work', async () => {
    const c = createConsulClient({ env });
    try {
      const self = await c.agent.self();
      assert.equal((self as { Config: { NodeName: string } }).Config.NodeName, 'secure-node');
      await c.agent.register({ ID: 'web-1', Name: 'web', Port: 80 });
      assert.ok(agent.catalog.agentService('web-1'));
    } finally {
      await c.close();
    }
  });

  test('without a client certificate the agent refuses the API (403), naming what is missing', async () => {
    const { CONSUL_CLIENT_CERT: _c, CONSUL_CLIENT_KEY: _k, ...noCert } = env;
    const c = createConsulClient({ env: noCert });
    try {
      await assert.rejects(c.agent.self(), (err: Error & { code?: string; status?: number }) => {
        assert.equal(err.code, 'PHARE_ERR_AGENT_RESPONSE');
        assert.equal(err.status, 403);
        assert.match(err.message, /Client certificate required/);
        return true;
      });
    } finally {
      await c.close();
    }
  });

  test("registrator's CONSUL_TLSCERT/CONSUL_TLSKEY work too; CONSUL_TLS_SERVER_NAME must match the certificate", async () => {
    const { CONSUL_CLIENT_CERT: _c, CONSUL_CLIENT_KEY: _k, ...base } = env;
    const reg = createConsulClient({
      env: {
        ...base,
        CONSUL_TLSCERT: client.certFile,
        CONSUL_TLSKEY: client.keyFile,
        CONSUL_TLS_SERVER_NAME: 'localhost',
      },
    });
    const wrong = createConsulClient({ env: { ...env, CONSUL_TLS_SERVER_NAME: 'not-the-agent.example' } });
    try {
      assert.equal((await reg.status.leader()) !== undefined, true);
      await assert.rejects(wrong.status.leader(), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PHARE_ERR_AGENT_UNREACHABLE');
        assert.match(err.message, /not-the-agent\.example|altnames|Hostname/i);
        return true;
      });
    } finally {
      await reg.close();
      await wrong.close();
    }
  });

  test('the token: *_TOKEN_FILE wins over its plain variable, PHARE_* over CONSUL_*; an unreadable file is named', async () => {
    const dir = ca.dir;
    const file = join(dir, 'token');
    writeFileSync(file, `${MGMT}\n`);
    const { CONSUL_HTTP_TOKEN: _t, ...noToken } = env;
    const fromFile = createConsulClient({
      env: { ...noToken, CONSUL_HTTP_TOKEN_FILE: file, CONSUL_HTTP_TOKEN: 'wrong' },
    });
    const anonymous = createConsulClient({ env: noToken });
    const phareWins = createConsulClient({
      env: { ...noToken, PHARE_HTTP_TOKEN: MGMT, CONSUL_HTTP_TOKEN: 'wrong' },
    });
    try {
      await fromFile.agent.self();
      await phareWins.agent.self();
      await assert.rejects(anonymous.agent.self(), (err: Error & { status?: number }) => {
        assert.equal(err.status, 403);
        assert.match(
          err.message,
          /Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'agent:read'/,
        );
        return true;
      });
    } finally {
      await fromFile.close();
      await anonymous.close();
      await phareWins.close();
    }
    assert.throws(
      () => createConsulClient({ env: { ...noToken, CONSUL_HTTP_TOKEN_FILE: join(dir, 'missing') } }),
      /CONSUL_HTTP_TOKEN_FILE: cannot read .*missing \(ENOENT\)/,
    );
    assert.throws(
      () => createConsulClient({ env: { ...env, CONSUL_CLIENT_KEY: '' } }),
      /CONSUL_CLIENT_CERT: a client certificate needs its key/,
    );
  });
});

describe('CLI: the same variables', { skip }, () => {
  test('phare catalog services over HTTPS with a client certificate and a token file; anonymous sees a filtered list', async () => {
    const file = join(ca.dir, 'cli-token');
    writeFileSync(file, MGMT);
    const { CONSUL_HTTP_TOKEN: _t, ...noToken } = env;
    const run = (extra: Record<string, string>) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const {
          PHARE_HTTP_ADDR: _a,
          CONSUL_HTTP_TOKEN: _b,
          PHARE_HTTP_TOKEN: _p,
          ...inherited
        } = process.env;
        const child = spawn(NODE_BIN, [join(REPO_ROOT, 'bin', 'phare.js'), 'catalog', 'services'], {
          env: { ...inherited, ...noToken, ...extra },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += String(d)));
        child.stderr.on('data', (d) => (stderr += String(d)));
        child.once('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const ok = await run({ CONSUL_HTTP_TOKEN_FILE: file });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /consul/);
    // anonymous under default deny: a list is filtered, not refused (Consul) — the consul service is not shown
    const anonymous = await run({});
    assert.equal(anonymous.code, 0, anonymous.stderr);
    assert.doesNotMatch(anonymous.stdout, /consul/);
  });
});
