/**
 * TLS to etcd (issue 14): a real etcd serving clients over TLS only and requiring client certificates
 * (`--client-cert-auth`), certificates made by the test with Debian's openssl. Agents given
 * `--etcd-ca-file/--etcd-cert-file/--etcd-key-file` form a cluster over it; a client without a certificate is
 * refused by etcd; bad TLS settings stop the start naming the flag.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import type { RunningAgent } from '../../src/agent/index.ts';
import { createEtcdStore } from '../../src/agent/store/index.ts';
import { waitFor } from '../helpers/agent.ts';
import { makeTestCa } from '../helpers/certs.ts';
import { getJson, put, startClusterAgent } from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';
import { dependencySkip } from '../helpers/requires.ts';

const missing =
  ETCD_SKIP || (existsSync('/usr/bin/openssl') ? false : '/usr/bin/openssl (apt-get install openssl)');

if (missing && process.env['CI'] !== 'true') {
  test('etcd over TLS', { skip: dependencySkip(missing) || 'skipped' }, () => {});
} else {
  const ca = makeTestCa('etcd CA');
  const server = ca.leaf('etcd', { san: 'IP:127.0.0.1,DNS:localhost' });
  const client = ca.leaf('phare', { client: true });
  const etcd = await startEtcdCluster({
    size: 1,
    tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: ca.caFile, client },
  });
  const agents: RunningAgent[] = [];
  after(async () => {
    for (const a of agents.splice(0)) await a.close().catch(() => {});
    await etcd.close();
    ca.remove();
  });
  const tlsFlags = {
    'dns-addr': '',
    'etcd-ca-file': ca.caFile,
    'etcd-cert-file': client.certFile,
    'etcd-key-file': client.keyFile,
  };

  test('agents with --etcd-ca-file/--etcd-cert-file/--etcd-key-file share the catalog over a TLS-only etcd', async () => {
    assert.match(etcd.endpoints[0] as string, /^https:\/\//);
    const a = await startClusterAgent(etcd, '/tls', 'a', tlsFlags);
    agents.push(a);
    const b = await startClusterAgent(etcd, '/tls', 'b', tlsFlags);
    agents.push(b);
    const r = await put(`${a.url}/v1/agent/service/register`, { ID: 'web-1', Name: 'web', Port: 80 });
    assert.equal(r.status, 200, r.text);
    // B's cache is fed by its own watch: wait for it to deliver A's write
    const ids = await waitFor(async () => {
      const seen = await getJson(`${b.url}/v1/catalog/service/web`);
      const list = (seen.body as { ServiceID: string }[]).map((s) => s.ServiceID);
      return list.length > 0 ? list : undefined;
    });
    assert.deepEqual(ids, ['web-1']);
  });

  test('without a client certificate etcd refuses the connection: the store fails, it does not hang', async () => {
    const s = createEtcdStore({
      endpoints: etcd.endpoints,
      prefix: '/tls-anon',
      requestTimeoutMs: 3000,
      tls: { ca: readFileSync(ca.caFile) },
    });
    const t = Date.now();
    try {
      await assert.rejects(s.loadRows(), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PHARE_ERR_STORE');
        return true;
      });
      assert.ok(Date.now() - t < 10_000, `failed after ${Date.now() - t} ms`);
    } finally {
      await s.close();
    }
  });

  test('bad TLS settings name the flag', () => {
    const base = { store: 'etcd', 'etcd-endpoints': etcd.endpoints.join(','), dev: true };
    assert.throws(
      () => resolveAgentConfig({ flags: { ...base, 'etcd-cert-file': client.certFile }, env: {} }),
      /--etcd-cert-file: needs --etcd-key-file/,
    );
    assert.throws(
      () =>
        resolveAgentConfig({
          flags: { ...base, 'etcd-endpoints': 'http://127.0.0.1:2379', 'etcd-ca-file': ca.caFile },
          env: {},
        }),
      /--etcd-endpoints: .* https:\/\/ URLs when --etcd-ca-file/,
    );
  });
}
