/**
 * Interop: Debian's Python Consul clients against a real Phare agent, unchanged, run with /usr/bin/python3
 * (the system interpreter that has their dependencies):
 *
 * - python3-consul (python-consul 0.7.1), installed system-wide;
 * - python3-consul2 (python-consul2 0.1.5), which conflicts with it (both are the `consul` module), so
 *   `scripts/system-deps.sh` unpacks its .deb into the Phare cache and this test puts that first on
 *   PYTHONPATH.
 *
 * python/story.py runs the whole story and prints what the client saw; this file asserts on it step by
 * step, so one incompatibility shows as one failing assertion.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgentInProcess } from '../helpers/agent.ts';
import { needs, phareCacheDir, requirePresent } from '../helpers/outside.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'python', 'story.py');

interface PythonClient {
  label: string;
  version: string;
  /** Prepended to PYTHONPATH (a private unpack), or undefined for the system-wide install. */
  path: string | undefined;
  /** How a missing client is installed. */
  install: string;
}

const CLIENTS: PythonClient[] = [
  {
    label: 'python-consul 0.7.1',
    version: '0.7.1',
    path: undefined,
    install: 'apt-get install python3-consul',
  },
  {
    label: 'python-consul2 0.1.5',
    version: '0.1.5',
    path: join(phareCacheDir(), 'python3-consul2', 'usr', 'lib', 'python3', 'dist-packages'),
    install: 'scripts/system-deps.sh test (apt-get download python3-consul2, unpacked into the Phare cache)',
  },
];

function env(client: PythonClient): NodeJS.ProcessEnv {
  const { PYTHONPATH, ...rest } = process.env;
  return client.path ? { ...rest, PYTHONPATH: client.path } : rest;
}

function missingClient(client: PythonClient): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found (install Debian python3)`;
  if (client.path && !existsSync(join(client.path, 'consul', 'base.py')))
    return `${client.path} has no consul module (${client.install})`;
  const r = spawnSync(PYTHON, ['-c', 'import consul; print(consul.__version__)'], {
    encoding: 'utf8',
    env: env(client),
  });
  if (r.status !== 0) return `${PYTHON} cannot import consul (${client.install})`;
  if (r.stdout.trim() !== client.version)
    return `${PYTHON} imports consul ${r.stdout.trim()}, not ${client.version} (${client.install})`;
  return undefined;
}

for (const client of CLIENTS) {
  const missing = missingClient(client);
  const opts = needs(missing);
  const name = client.label;

  describe(name, () => {
    type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
    let agent: Agent | undefined;
    // biome-ignore lint/suspicious/noExplicitAny: the script's JSON output, checked field by field below
    let out: Record<string, any> = {};

    before(async () => {
      if (missing) return;
      agent = await startAgentInProcess();
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(PYTHON, [SCRIPT, agent?.url ?? ''], { timeout: 60_000, env: env(client) }, (err, so, se) => {
          if (err) reject(new Error(`story.py failed (${err.message}):\n${se}\n${so}`));
          else resolve(so);
        });
      });
      out = JSON.parse(stdout);
    });

    after(async () => {
      await agent?.close();
    });

    test(`${name}: reads on a fresh agent`, opts, () => {
      requirePresent(missing);
      assert.equal(out['consul_version'], client.version);
      assert.equal(out['leader'], '127.0.0.1:8300');
      assert.deepEqual(out['peers'], ['127.0.0.1:8300']);
      assert.deepEqual(out['datacenters'], ['dc1']);
      assert.deepEqual(out['self'], {
        Datacenter: 'dc1',
        NodeName: 'test-node',
        leader_addr: '127.0.0.1:8300',
      });
      assert.deepEqual(out['members'], ['test-node']);
      assert.deepEqual(out['state_any_fresh'], [['serfHealth', '']]);
    });

    test(`${name}: register with lowercase keys and an HTTP check; critical then passing`, opts, () => {
      requirePresent(missing);
      assert.equal(out['register_web1'], true);
      assert.deepEqual(out['agent_services'], {
        'web-1': { Service: 'web', Tags: ['v1', 'blue'], Port: 8080 },
      });
      assert.deepEqual(out['health_initial'], {
        'web-1': { serfHealth: 'passing', 'service:web-1': 'critical' },
      });
      assert.deepEqual(out['passing_initial'], []);
      assert.deepEqual(
        out['passing_after_200'],
        ['web-1'],
        'the HTTP check should pass (needs the health-check engine)',
      );
      assert.match(String(out['http_check_output']), /200 OK/);
    });

    test(`${name}: tags on catalog.service and health.service`, opts, () => {
      requirePresent(missing);
      assert.equal(out['register_web2'], true);
      assert.deepEqual(out['catalog_tag_v1'], ['web-1']);
      assert.deepEqual(out['catalog_tag_blue'], ['web-1', 'web-2']);
      assert.deepEqual(out['health_tag_v2'], ['web-2']);
      assert.deepEqual(out['catalog_services'], { consul: [], web: ['blue', 'v1', 'v2'] });
    });

    test(`${name}: TTL check driven with pass/warn/fail`, opts, () => {
      requirePresent(missing);
      assert.equal(out['register_ttl'], true);
      assert.equal(out['ttl_initial'], 'critical');
      assert.equal(out['ttl_pass'], true);
      assert.deepEqual(out['ttl_after_pass'], {
        Status: 'passing',
        Output: 'all good',
        Notes: 'from python',
        ServiceID: 'web-2',
      });
      assert.equal(out['ttl_warn'], true);
      assert.deepEqual(out['ttl_after_warn'], { Status: 'warning', Output: 'slow' });
      assert.equal(out['ttl_fail'], true);
      assert.deepEqual(out['ttl_after_fail'], { Status: 'critical', Output: 'down' });
      assert.equal(out['ttl_pass_again'], true);
      assert.deepEqual(out['health_checks_web'], ['service:web-1', 'ttl-web-2']);
      assert.deepEqual(out['health_node'], ['serfHealth', 'service:web-1', 'ttl-web-2']);
    });

    test(`${name}: maintenance with enable as a string`, opts, () => {
      requirePresent(missing);
      assert.equal(out['maint_on_str'], true);
      assert.deepEqual(out['maint_check_str'], { Status: 'critical', Notes: 'deploy' });
      assert.ok(!(out['maint_passing_ids'] as string[]).includes('web-2'));
      assert.equal(out['maint_off_str'], true);
    });

    test(`${name}: maintenance with enable as a Python bool (sent as "True"/"False")`, opts, () => {
      requirePresent(missing);
      // Consul parses ?enable with strconv.ParseBool, which takes True/False/TRUE/t/1…
      assert.equal(out['maint_on_bool'], true);
      assert.equal(out['maint_check_bool'], 'critical');
      assert.equal(out['maint_off_bool'], true);
      assert.equal(out['node_maint_on_bool'], true);
      assert.equal(out['node_maint_check'], 'critical');
      assert.equal(out['node_maint_off_bool'], true);
    });

    test(`${name}: blocking health.service woken by another thread, not by another service`, opts, () => {
      requirePresent(missing);
      const w = out['blocking_woken'];
      assert.deepEqual(w.ids, ['api-1', 'api-2']);
      assert.ok(w.index_after > w.index_before, JSON.stringify(w));
      assert.ok(w.elapsed >= 0.4 && w.elapsed < 4.5, `woken after ${w.elapsed}s (change at 0.5s, wait 5s)`);
      const n = out['blocking_not_woken'];
      assert.equal(n.index_after, n.index_before, JSON.stringify(n));
      assert.ok(n.elapsed >= 0.95, `returned after ${n.elapsed}s, before its 1s wait`);
    });

    test(`${name}: Patroni's scope/name service ID, registered and deregistered with a raw "/"`, opts, () => {
      requirePresent(missing);
      assert.deepEqual(out['patroni'], {
        registered: true,
        id: 'pg-cluster/node1',
        tags: ['primary', 'master'],
        enable_tag_override: true,
        health_ids: ['pg-cluster/node1'],
        deregistered: true,
        after: [],
      });
    });

    test(`${name}: a 404 read (missing KV key) is (index, None), not a KeyError`, opts, () => {
      requirePresent(missing);
      assert.deepEqual(out['kv_missing'], { index_is_number: true, data: null });
    });

    test(`${name}: deregister; unknown ID returns False; 400 raises BadRequest`, opts, () => {
      requirePresent(missing);
      assert.equal(out['deregister_web1'], true);
      assert.equal(out['deregister_unknown'], false);
      assert.deepEqual(out['services_after_deregister'], ['api-1', 'api-2', 'unrelated-1', 'web-2']);
      assert.deepEqual(out['catalog_web_after'], ['web-2']);
      assert.equal(out['check_deregister'], true);
      assert.ok(!(out['checks_after'] as string[]).includes('ttl-web-2'));
      assert.deepEqual(out['catalog_nodes'], [['test-node', '127.0.0.1']]);
      assert.deepEqual(out['catalog_node'], ['api-1', 'api-2', 'consul', 'unrelated-1', 'web-2']);
      assert.deepEqual(out['bad_request'], { error: 'BadRequest: 400 Missing service name' });
    });
  });
}
