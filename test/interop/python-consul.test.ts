/**
 * Interop: Debian's python3-consul 0.7.1 (run with /usr/bin/python3, the system interpreter that has it)
 * against a real Phare agent. python/story.py runs the whole story and prints what the client saw; this
 * file asserts on it step by step, so one incompatibility shows as one failing assertion.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestAgent } from '../helpers/agent.ts';
import { dependencySkip } from '../helpers/requires.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'python', 'story.py');

function pythonConsulMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found (install Debian python3 and python3-consul)`;
  const r = spawnSync(PYTHON, ['-c', 'import consul'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${PYTHON} cannot import consul (apt-get install python3-consul)`;
}
const skip = dependencySkip(pythonConsulMissing());

type Agent = Awaited<ReturnType<typeof startTestAgent>>;
let agent: Agent | undefined;
// biome-ignore lint/suspicious/noExplicitAny: the script's JSON output, checked field by field below
let out: Record<string, any> = {};

before(async () => {
  if (skip) return;
  agent = await startTestAgent();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, agent?.url ?? ''], { timeout: 60_000 }, (err, so, se) => {
      if (err) reject(new Error(`story.py failed (${err.message}):\n${se}\n${so}`));
      else resolve(so);
    });
  });
  out = JSON.parse(stdout);
});

after(async () => {
  await agent?.close();
});

const opts = { skip };

test('python-consul 0.7.1: reads on a fresh agent', opts, () => {
  assert.equal(out['consul_version'], '0.7.1');
  assert.equal(out['leader'], '127.0.0.1:8300');
  assert.deepEqual(out['peers'], ['127.0.0.1:8300']);
  assert.deepEqual(out['datacenters'], ['dc1']);
  assert.deepEqual(out['self'], { Datacenter: 'dc1', NodeName: 'test-node', leader_addr: '127.0.0.1:8300' });
  assert.deepEqual(out['members'], ['test-node']);
  assert.deepEqual(out['state_any_fresh'], [['serfHealth', '']]);
});

test(
  'python-consul 0.7.1: register with lowercase keys and an HTTP check; critical then passing',
  opts,
  () => {
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
  },
);

test('python-consul 0.7.1: tags on catalog.service and health.service', opts, () => {
  assert.equal(out['register_web2'], true);
  assert.deepEqual(out['catalog_tag_v1'], ['web-1']);
  assert.deepEqual(out['catalog_tag_blue'], ['web-1', 'web-2']);
  assert.deepEqual(out['health_tag_v2'], ['web-2']);
  assert.deepEqual(out['catalog_services'], { consul: [], web: ['blue', 'v1', 'v2'] });
});

test('python-consul 0.7.1: TTL check driven with GET pass/warn/fail', opts, () => {
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

test('python-consul 0.7.1: maintenance with enable as a string', opts, () => {
  assert.equal(out['maint_on_str'], true);
  assert.deepEqual(out['maint_check_str'], { Status: 'critical', Notes: 'deploy' });
  assert.ok(!(out['maint_passing_ids'] as string[]).includes('web-2'));
  assert.equal(out['maint_off_str'], true);
});

test('python-consul 0.7.1: maintenance with enable as a Python bool (sent as "True"/"False")', opts, () => {
  // Consul parses ?enable with strconv.ParseBool, which takes True/False/TRUE/t/1…
  assert.equal(out['maint_on_bool'], true);
  assert.equal(out['maint_check_bool'], 'critical');
  assert.equal(out['maint_off_bool'], true);
  assert.equal(out['node_maint_on_bool'], true);
  assert.equal(out['node_maint_check'], 'critical');
  assert.equal(out['node_maint_off_bool'], true);
});

test(
  'python-consul 0.7.1: blocking health.service woken by another thread, not by another service',
  opts,
  () => {
    const w = out['blocking_woken'];
    assert.deepEqual(w.ids, ['api-1', 'api-2']);
    assert.ok(w.index_after > w.index_before, JSON.stringify(w));
    assert.ok(w.elapsed >= 0.4 && w.elapsed < 4.5, `woken after ${w.elapsed}s (change at 0.5s, wait 5s)`);
    const n = out['blocking_not_woken'];
    assert.equal(n.index_after, n.index_before, JSON.stringify(n));
    assert.ok(n.elapsed >= 0.95, `returned after ${n.elapsed}s, before its 1s wait`);
  },
);

test(
  'python-consul 0.7.1: deregister with GET; unknown ID returns False; 400 raises BadRequest',
  opts,
  () => {
    assert.equal(out['deregister_web1'], true);
    assert.equal(out['deregister_unknown'], false);
    assert.deepEqual(out['services_after_deregister'], ['api-1', 'api-2', 'unrelated-1', 'web-2']);
    assert.deepEqual(out['catalog_web_after'], ['web-2']);
    assert.equal(out['check_deregister'], true);
    assert.ok(!(out['checks_after'] as string[]).includes('ttl-web-2'));
    assert.deepEqual(out['catalog_nodes'], [['test-node', '127.0.0.1']]);
    assert.deepEqual(out['catalog_node'], ['api-1', 'api-2', 'consul', 'unrelated-1', 'web-2']);
    assert.deepEqual(out['bad_request'], { error: 'BadRequest: 400 Missing service name' });
  },
);
