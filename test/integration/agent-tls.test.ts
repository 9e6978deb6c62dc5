/**
 * The HTTPS API (issue 14) with certificates the test makes with Debian's openssl: curl and Node clients
 * with and without client certificates, TLS 1.2 as the floor, certificates reloaded (SIGHUP) without
 * dropping open connections, and HTTPS health checks with TLSServerName / TLSSkipVerify / the agent's CA.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer, Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, type PeerCertificate } from 'node:tls';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { serverTlsOptions } from '../../src/agent/http/tls.ts';
import { type RunningAgent, startAgent } from '../../src/agent/index.ts';
import { spawnAgent, waitFor } from '../helpers/agent.ts';
import { makeTestCa, type TestCa } from '../helpers/certs.ts';
import { dependencySkip } from '../helpers/requires.ts';

const run = promisify(execFile);
const skip = dependencySkip(
  existsSync('/usr/bin/openssl') ? undefined : '/usr/bin/openssl (apt-get install openssl)',
);

let ca: TestCa;
let server: { certFile: string; keyFile: string };
let client: { certFile: string; keyFile: string };

before(() => {
  if (skip) return;
  ca = makeTestCa('Agent CA');
  server = ca.leaf('agent', { san: 'IP:127.0.0.1,DNS:localhost' });
  client = ca.leaf('client', { client: true });
});
after(() => ca?.remove());

async function startTls(flags: Record<string, unknown>): Promise<RunningAgent> {
  const config = resolveAgentConfig({
    flags: {
      dev: true,
      'http-addr': '127.0.0.1:0',
      'dns-addr': '',
      'https-addr': '127.0.0.1:0',
      'tls-cert-file': server.certFile,
      'tls-key-file': server.keyFile,
      node: 'tls-node',
      ...flags,
    },
    env: {},
  });
  return startAgent({ config, logger: pino({ level: 'silent' }) });
}

/** curl's status code and body (curl is what users try first). */
async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', ...args], { timeout: 15_000 });
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
}

describe('HTTPS API', () => {
  let agent: RunningAgent;
  before(async () => {
    if (!skip) agent = await startTls({});
  });
  after(() => agent?.close());

  test('curl with the CA gets the API over TLS; without it, curl refuses the certificate', {
    skip,
  }, async () => {
    const url = `${agent.httpsUrl}/v1/agent/self`;
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\//);
    const ok = await curl(['--cacert', ca.caFile, url]);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(JSON.parse(ok.body).Config.NodeName, 'tls-node');
    await assert.rejects(run('curl', ['-sS', '--fail', url], { timeout: 15_000 }), /certificate/);
    // the plain HTTP listener stays (bind it to loopback)
    assert.equal((await fetch(`${agent.httpUrl}/v1/agent/self`)).status, 200);
  });

  test('TLS 1.2 is the floor: a TLS 1.1 client is refused; 1.2 and 1.3 are served', { skip }, async () => {
    const port = Number(new URL(agent.httpsUrl ?? '').port);
    const hello = (min: 'TLSv1' | 'TLSv1.2' | 'TLSv1.3', max: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') =>
      new Promise<string>((resolve, reject) => {
        const s = connect({
          host: '127.0.0.1',
          port,
          ca: readFileSync(ca.caFile),
          minVersion: min,
          maxVersion: max,
          ciphers: 'DEFAULT@SECLEVEL=0', // let OpenSSL 3 offer TLS 1.1 at all: the server must be the one refusing
        });
        s.once('secureConnect', () => {
          resolve(s.getProtocol() ?? '');
          s.end();
        });
        s.once('error', reject);
      });
    // A TLS 1.1 client is refused. (Debian's OpenSSL 3 server would refuse it even at minVersion TLSv1 —
    // its security level forbids 1.1's signatures — so the pinned option is asserted on its own below.)
    await assert.rejects(hello('TLSv1', 'TLSv1.1'), /protocol version|unsupported protocol|alert/i);
    assert.equal(await hello('TLSv1.2', 'TLSv1.2'), 'TLSv1.2');
    assert.equal(await hello('TLSv1.3', 'TLSv1.3'), 'TLSv1.3');
    const opts = serverTlsOptions({ cert: Buffer.alloc(0), key: Buffer.alloc(0) }, false);
    assert.equal(opts.minVersion, 'TLSv1.2');
  });
});

describe('--tls-verify-incoming', () => {
  let agent: RunningAgent;
  before(async () => {
    if (!skip) agent = await startTls({ 'tls-ca-file': ca.caFile, 'tls-verify-incoming': true });
  });
  after(() => agent?.close());

  test('the API needs a client certificate of the CA; the UI does not', { skip }, async () => {
    const api = `${agent.httpsUrl}/v1/agent/self`;
    const bare = await curl(['--cacert', ca.caFile, api]);
    assert.equal(bare.status, 403);
    assert.match(bare.body, /^Client certificate required: the HTTPS API runs with --tls-verify-incoming/);
    const withCert = await curl([
      '--cacert',
      ca.caFile,
      '--cert',
      client.certFile,
      '--key',
      client.keyFile,
      api,
    ]);
    assert.equal(withCert.status, 200, withCert.body);
    const other = makeTestCa('Stranger CA');
    try {
      const stranger = other.leaf('stranger', { client: true });
      const res = await curl([
        '--cacert',
        ca.caFile,
        '--cert',
        stranger.certFile,
        '--key',
        stranger.keyFile,
        api,
      ]);
      assert.equal(res.status, 403, 'a certificate from another CA is no certificate');
    } finally {
      other.remove();
    }
    const ui = await curl(['--cacert', ca.caFile, `${agent.httpsUrl}/ui/`]);
    assert.equal(ui.status, 200);
    assert.match(ui.body, /<html/i);
  });

  test('bad TLS settings stop the start, naming the flag', { skip }, () => {
    assert.throws(
      () => resolveAgentConfig({ flags: { 'https-addr': '127.0.0.1:0' }, env: {} }),
      /--https-addr: needs --tls-cert-file and --tls-key-file/,
    );
    assert.throws(
      () =>
        resolveAgentConfig({
          flags: {
            'https-addr': '127.0.0.1:0',
            'tls-cert-file': 'a',
            'tls-key-file': 'b',
            'tls-verify-incoming': true,
          },
          env: {},
        }),
      /--tls-verify-incoming: needs --tls-ca-file/,
    );
  });

  test('a key that is not the certificate’s is refused at start', { skip }, async () => {
    await assert.rejects(
      startTls({ 'tls-key-file': client.keyFile }),
      /--tls-cert-file\/--tls-key-file: .* are not a PEM certificate and its key/,
    );
  });
});

/** GET over `agent` (keep-alive); resolves with the status, the peer certificate's serial and the socket. */
function get(url: string, agent: HttpsAgent): Promise<{ status: number; serial: string; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent, ca: readFileSync(ca.caFile) }, (res: IncomingMessage) => {
      // read now: once the body ends the socket goes back to the agent's pool and res.socket is null
      const socket = res.socket as unknown as { getPeerCertificate(): PeerCertificate };
      const serial = socket.getPeerCertificate().serialNumber;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial, socket }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('SIGHUP reloads the certificate; an open keep-alive connection keeps working', { skip }, async () => {
  // the agent reads these paths; the test swaps their contents
  const live = { certFile: `${ca.dir}/live.pem`, keyFile: `${ca.dir}/live-key.pem` };
  copyFileSync(server.certFile, live.certFile);
  copyFileSync(server.keyFile, live.keyFile);
  const proc = await spawnAgent(
    [
      '--dev',
      '--http-addr',
      '127.0.0.1:0',
      '--dns-addr',
      '',
      '--https-addr',
      '127.0.0.1:0',
      '--tls-cert-file',
      live.certFile,
      '--tls-key-file',
      live.keyFile,
    ],
    { PHARE_LOG_LEVEL: 'info' },
  );
  const keep = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  try {
    const httpsUrl = /HTTPS API: (https:\/\/[^/\s]+)\//.exec(proc.output())?.[1];
    assert.ok(httpsUrl, proc.output());
    const first = await get(`${httpsUrl}/v1/agent/self`, keep);
    assert.equal(first.status, 200);

    const next = ca.leaf('agent-next', { san: 'IP:127.0.0.1' });
    writeFileSync(live.keyFile, readFileSync(next.keyFile));
    writeFileSync(live.certFile, readFileSync(next.certFile));
    proc.child.kill('SIGHUP');
    await waitFor(() => /TLS certificates reloaded/.test(proc.output()), 10_000);

    const again = await get(`${httpsUrl}/v1/agent/self`, keep);
    assert.equal(again.status, 200);
    assert.equal(again.socket, first.socket, 'the same connection, not dropped');
    assert.equal(again.serial, first.serial, 'an open connection keeps the certificate it shook hands with');
    const fresh = await get(`${httpsUrl}/v1/agent/self`, new HttpsAgent());
    assert.notEqual(fresh.serial, first.serial, 'a new connection gets the new certificate');

    // a broken file on reload keeps the old certificate and says so
    writeFileSync(live.certFile, 'not a certificate');
    proc.child.kill('SIGHUP');
    await waitFor(() => /TLS reload failed.*--tls-cert-file/.test(proc.output()), 10_000);
    assert.equal((await get(`${httpsUrl}/v1/agent/self`, new HttpsAgent())).serial, fresh.serial);
  } finally {
    keep.destroy();
    proc.child.kill('SIGTERM');
    await proc.exited;
  }
});

describe('HTTPS health checks', () => {
  let agent: RunningAgent;
  const backends: ReturnType<typeof createServer>[] = [];
  let named: number;
  let selfSigned: number;
  let other: TestCa;

  async function backend(cert: { certFile: string; keyFile: string }): Promise<number> {
    const s = createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (_q, r) =>
      r.end('ok'),
    );
    backends.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  }

  before(async () => {
    if (skip) return;
    // the agent's CA signs a backend known only as backend.test; a stranger CA signs another
    named = await backend(ca.leaf('backend', { san: 'DNS:backend.test' }));
    other = makeTestCa('Backend Stranger CA');
    selfSigned = await backend(other.leaf('stranger-backend', { san: 'IP:127.0.0.1' }));
    agent = await startTls({ 'tls-ca-file': ca.caFile });
  });
  after(async () => {
    await agent?.close();
    for (const s of backends) s.close();
    other?.remove();
  });

  async function checkStatus(
    id: string,
    def: Record<string, unknown>,
  ): Promise<{ Status: string; Output: string }> {
    const res = await fetch(`${agent.httpUrl}/v1/agent/check/register`, {
      method: 'PUT',
      body: JSON.stringify({ ID: id, Name: id, Interval: '1s', ...def }),
    });
    assert.equal(res.status, 200, await res.text());
    const found = await waitFor(async () => {
      const checks = (await (await fetch(`${agent.httpUrl}/v1/agent/checks`)).json()) as Record<
        string,
        { Status: string; Output: string }
      >;
      const c = checks[id];
      return c && c.Output !== '' ? c : undefined;
    }, 10_000);
    assert.ok(found);
    return found;
  }

  test('TLSServerName with the agent’s CA passes; without it the name does not match', { skip }, async () => {
    const url = `https://127.0.0.1:${named}/health`;
    assert.equal(
      (await checkStatus('named', { HTTP: url, TLSServerName: 'backend.test' })).Status,
      'passing',
    );
    const plain = await checkStatus('unnamed', { HTTP: url });
    assert.equal(plain.Status, 'critical');
    assert.match(plain.Output, /certificate|altnames|IP/i);
  });

  test('TLSSkipVerify accepts a certificate of a CA the agent does not know', { skip }, async () => {
    const url = `https://127.0.0.1:${selfSigned}/health`;
    assert.equal((await checkStatus('strict', { HTTP: url })).Status, 'critical');
    assert.equal((await checkStatus('skip', { HTTP: url, TLSSkipVerify: true })).Status, 'passing');
  });
});
