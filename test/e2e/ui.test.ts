/**
 * The web UI in a real browser (Debian chromium driven by playwright-core) against a real agent: the service
 * list with counts and filters (and its "no match" state), a service's instances with Meta, tags and checks,
 * a failing node check shown as the cause, the Nodes and Members views, the KV browser (create, edit with
 * check-and-set, delete), token login against the agent's own ACLs (default deny: anonymous sees nothing, a
 * refused token is said so, a read token sees only what it may read; X-Consul-Token from sessionStorage), live updates without a reload, the unreachable banner, and a 390 px wide viewport.
 * Every run writes screenshots to test-results/ui/ (git-ignored) for a reviewer to look at.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startTestAgent, type TestAgent } from '../../src/testing/index.ts';
import { REPO_ROOT } from '../helpers/agent.ts';
import { dependencySkip } from '../helpers/requires.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = dependencySkip(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} (apt-get install chromium)`);
const SHOTS = join(REPO_ROOT, 'test-results', 'ui');

let agent: TestAgent;
let browser: Browser;
let page: Page;

async function put(path: string, body?: unknown, base = agent.url): Promise<string> {
  const res = await fetch(`${base}${path}`, {
    method: 'PUT',
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text;
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const names = (p: Page, sel: string, attr: string) =>
  p.locator(sel).evaluateAll((els, a) => els.map((e) => e.getAttribute(a)), attr);

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  agent = await startTestAgent();
  for (const i of [1, 2]) {
    await put('/v1/agent/service/register', {
      Name: 'web',
      ID: `web-${i}`,
      Address: '127.0.0.1',
      Port: 8080 + i,
      Tags: ['v1', '<b>not html</b>'],
      Meta: { version: '1.4.2', team: 'storefront' },
      Check: { CheckID: `web-${i}-ttl`, Name: 'web alive', TTL: '60s', Status: 'passing' },
    });
  }
  await put('/v1/agent/service/register', {
    Name: 'api',
    ID: 'api-1',
    Port: 9000,
    Tags: ['v2'],
    Check: { CheckID: 'api-ttl', Name: 'api ready', TTL: '60s', Status: 'warning' },
  });
  await put('/v1/agent/service/register', { Name: 'db', ID: 'db-1', Port: 5432 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
});

after(async () => {
  await browser?.close();
  await agent?.close();
});

describe('web UI', { skip }, () => {
  test('services: health counts, instance counts for services without checks, the agent named', async () => {
    await page.goto(`${agent.url}/`);
    assert.match(page.url(), /\/ui\/$/, '/ redirects to the UI');
    await page.locator('[data-service="web"]').waitFor();
    await page.locator('[data-counts="web"] .passing').waitFor();
    assert.deepEqual(await names(page, '#services [data-service]', 'data-service'), [
      'api',
      'consul',
      'db',
      'web',
    ]);
    assert.equal(await page.locator('[data-counts="web"]').textContent(), '2 passing0 warning0 critical');
    assert.equal(await page.locator('[data-counts="api"]').textContent(), '0 passing1 warning0 critical');
    assert.equal(await page.locator('[data-counts="db"]').textContent(), '1 instance · no checks');
    assert.equal(await page.locator('[data-service="web"] .dot').getAttribute('aria-label'), 'passing');
    assert.match((await page.locator('#agent').textContent()) ?? '', /node test-node · dc1/);
    // API data is text, never markup
    assert.equal(await page.locator('#view b').count(), 0);
    assert.ok((await page.locator('[data-service="web"]').textContent())?.includes('<b>not html</b>'));
    await shot(page, '01-services');
  });

  test('filters: tag, status and name, a "no match" state that clears', async () => {
    await page.locator('#tag-filter').selectOption('v2');
    assert.deepEqual(await names(page, '#services [data-service]', 'data-service'), ['api']);
    await page.locator('#tag-filter').selectOption('');
    await page.locator('#status-filter').selectOption('unchecked');
    // the agent's own consul service has only the node's serfHealth, as in Consul
    assert.deepEqual(await names(page, '#services [data-service]', 'data-service'), ['consul', 'db']);
    await page.locator('#status-filter').selectOption('warning');
    assert.deepEqual(await names(page, '#services [data-service]', 'data-service'), ['api']);
    await page.locator('#status-filter').selectOption('critical');
    await page.locator('#services [data-empty]').waitFor();
    assert.match((await page.locator('#services').textContent()) ?? '', /No service matches these filters/);
    assert.match((await page.locator('#summary').textContent()) ?? '', /4 services, 0 shown/);
    await shot(page, '02-services-no-match');
    await page.getByRole('button', { name: 'Clear filters' }).click();
    assert.equal(await page.locator('#services [data-service]').count(), 4);
    await page.locator('#search').fill('we');
    assert.deepEqual(await names(page, '#services [data-service]', 'data-service'), ['web']);
    await page.locator('#search').fill('');
  });

  test('a service: instances with tags, Meta and checks (type, interval, output), updated live', async () => {
    await page.locator('[data-service="web"]').click();
    await page.locator('[data-instance="web-2"]').waitFor();
    assert.equal(await page.locator('[data-instance]').count(), 2);
    const card = page.locator('[data-instance="web-1"]');
    assert.match((await card.textContent()) ?? '', /127\.0\.0\.1:8081 on node test-node/);
    assert.match((await card.locator('.meta').textContent()) ?? '', /version1\.4\.2teamstorefront/);
    assert.match(
      (await card.locator('[data-kind="web-1-ttl"]').textContent()) ?? '',
      /^ttl · id web-1-ttl · last change at index \d+$/,
    );
    assert.equal(await card.locator('[data-status]').first().textContent(), 'passing');
    await shot(page, '03-service');
    // a check going critical, with its output, changes the open page without a reload
    await put('/v1/agent/check/fail/web-1-ttl?note=database%20unreachable');
    await card.locator('header [data-status="critical"]').waitFor({ timeout: 10_000 });
    assert.match(
      (await card.locator('[data-check="web-1-ttl"] .output').textContent()) ?? '',
      /database unreachable/,
    );
    assert.match(
      (await page.locator('#service-summary').textContent()) ?? '',
      /2 instances: 1 passing, 0 warning, 1 critical/,
    );
    await put('/v1/agent/service/register', { Name: 'web', ID: 'web-3', Port: 8083 });
    await page.locator('[data-instance="web-3"]').waitFor({ timeout: 10_000 });
    assert.match(
      (await page.locator('[data-instance="web-3"]').textContent()) ?? '',
      /No checks of its own: counted as passing unless a node check fails/,
    );
    await shot(page, '04-service-live');
    // and the list's counts follow
    await page.locator('#tabs [data-tab="services"]').click();
    await page
      .locator('[data-counts="web"]')
      .filter({ hasText: '2 passing0 warning1 critical' })
      .waitFor({ timeout: 10_000 });
  });

  test('a failing node check is shown as the cause; the Nodes view and a node', async () => {
    await put('/v1/agent/check/register', {
      CheckID: 'worker',
      Name: 'worker',
      TTL: '60s',
      Status: 'critical',
      Notes: 'disk full',
    });
    try {
      await page.goto(`${agent.url}/ui/#/service/api`);
      const cause = page.locator('[data-cause="worker"]');
      await cause.waitFor({ timeout: 10_000 });
      assert.match(
        (await cause.textContent()) ?? '',
        /^node check worker is critical → every service on node test-node is critical/,
      );
      assert.match(
        (await page.locator('[data-instance="api-1"] [data-check="worker"]').textContent()) ?? '',
        /node check/,
      );
      await shot(page, '05-service-node-cause');
      await page.locator('#tabs [data-tab="nodes"]').click();
      await page.locator('[data-node="test-node"]').waitFor();
      assert.match((await page.locator('[data-node="test-node"]').textContent()) ?? '', /worker critical/);
      assert.equal(await page.locator('[data-node="test-node"] .dot').getAttribute('aria-label'), 'critical');
      await shot(page, '06-nodes');
      await page.locator('[data-node="test-node"]').click();
      await page.locator('#view [data-service="web"]').first().waitFor();
      assert.match((await page.locator('#view').textContent()) ?? '', /Node checks/);
      assert.ok((await page.locator('#view [data-service]').count()) >= 4, 'its services are listed');
      await shot(page, '07-node');
    } finally {
      await put('/v1/agent/check/deregister/worker');
    }
  });

  test('cluster members', async () => {
    await page.locator('#tabs [data-tab="members"]').click();
    await page.locator('[data-member="test-node"]').waitFor();
    assert.equal(await page.locator('[data-member="test-node"] [data-member-status]').textContent(), 'alive');
    await shot(page, '08-members');
  });

  test('the KV browser: folders, a key, create, edit with check-and-set, delete', async () => {
    await put('/v1/kv/app/config/db', 'postgres://db:5432/app');
    await put('/v1/kv/app/feature', 'on');
    await page.locator('#tabs [data-tab="kv"]').click();
    await page.locator('[data-key="app/"]').click();
    await page.locator('[data-key="app/config/"]').waitFor();
    assert.deepEqual(await names(page, '#kv [data-key]', 'data-key'), ['app/config/', 'app/feature']);
    await shot(page, '09-kv-folder');
    await page.locator('[data-key="app/config/"]').click();
    await page.locator('[data-key="app/config/db"]').click();
    const value = page.locator('#kv-value');
    await page.locator('#kv-info').filter({ hasText: 'modified at index' }).waitFor();
    assert.equal(await value.inputValue(), 'postgres://db:5432/app');
    await value.fill('postgres://db2:5432/app');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#kv-msg').filter({ hasText: 'Saved.' }).waitFor();
    assert.equal(
      await (await fetch(`${agent.url}/v1/kv/app/config/db?raw`)).text(),
      'postgres://db2:5432/app',
    );
    await shot(page, '10-kv-key');
    // someone else writes while the page holds an edit: the save is refused, not lost silently
    await value.fill('mine');
    await put('/v1/kv/app/config/db', 'theirs');
    await page
      .locator('#kv-msg')
      .filter({ hasText: 'Someone else changed this key' })
      .waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#kv-msg').filter({ hasText: 'Not saved: the key changed' }).waitFor();
    assert.equal(await (await fetch(`${agent.url}/v1/kv/app/config/db?raw`)).text(), 'theirs');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.locator('[data-key="app/config/"], [data-empty]').first().waitFor();
    assert.equal((await fetch(`${agent.url}/v1/kv/app/config/db`)).status, 404);
    // create a key under the current folder
    await page.goto(`${agent.url}/ui/#/kv/app/`);
    await page.locator('#kv-new-key').fill('limits/max');
    await page.locator('#kv-new-value').fill('42');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('.kv-new [role="status"]').filter({ hasText: 'Created app/limits/max.' }).waitFor();
    assert.equal(await (await fetch(`${agent.url}/v1/kv/app/limits/max?raw`)).text(), '42');
    await page.locator('[data-key="app/limits/"]').waitFor({ timeout: 10_000 });
  });

  test("token login against the agent's own ACLs (default deny): anonymous sees nothing, a refused token says so, a read token sees what it may read", async () => {
    const MGMT = '0b6c6d5e-3f1a-4a8b-9c2d-7e8f9a0b1c2d';
    const acl = await startTestAgent({
      node: 'acl-node',
      flags: { 'acl-enabled': true, 'acl-default-policy': 'deny', 'acl-initial-management-token': MGMT },
    });
    const as = async (token: string, path: string, body: unknown) => {
      const res = await fetch(`${acl.url}${path}`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': token },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      assert.equal(res.status, 200, `${path}: ${text}`);
      return text;
    };
    const p = await browser.newPage();
    try {
      for (const name of ['web', 'api'])
        await as(MGMT, '/v1/agent/service/register', {
          Name: name,
          ID: `${name}-1`,
          Port: 9000,
          Check: { TTL: '60s', Status: 'passing' },
        });
      await as(MGMT, '/v1/acl/policy', {
        Name: 'read-web',
        Rules: 'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }',
      });
      const token = (
        JSON.parse(await as(MGMT, '/v1/acl/token', { Policies: [{ Name: 'read-web' }] })) as {
          SecretID: string;
        }
      ).SecretID;

      await p.goto(`${acl.url}/ui/`);
      // anonymous under default deny: the lists come back empty (filtered), and the login is offered
      await p.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
      assert.equal(
        await p.locator('[data-service="web"]').count(),
        0,
        'anonymous sees web under default deny',
      );
      // the agent is there: only its details are refused (they need agent:read), never "not reachable"
      await p.locator('#agent').filter({ hasText: 'agent:read' }).waitFor({ timeout: 10_000 });
      assert.equal(await p.locator('#auth').isHidden(), true, 'a refused /v1/agent/self asked for a login');
      await p.getByText('No service this token may read').waitFor({ timeout: 10_000 });
      await shot(p, '11-acl-anonymous');

      // a secret the agent does not know: its own 403 "ACL not found", and the page says the token was refused
      await p.locator('#login').click();
      await p.locator('#token').fill('00000000-dead-beef-0000-000000000000');
      await p.locator('#login-form button[type="submit"]').click();
      await p.locator('#auth').filter({ hasText: 'refused this token' }).waitFor({ timeout: 10_000 });
      assert.match((await p.locator('#auth').textContent()) ?? '', /ACL not found/);
      await shot(p, '12-acl-refused');

      // a token that may read web (not api): web appears, api stays hidden, and the page says some are hidden
      await p.locator('#auth button').click();
      await p.locator('#token').fill(token);
      await p.locator('#login-form button[type="submit"]').click();
      await p.locator('[data-service="web"]').waitFor({ timeout: 10_000 });
      assert.equal(await p.locator('[data-service="api"]').count(), 0, 'the web-only token shows api');
      await p.getByText('hidden by ACLs').first().waitFor({ timeout: 10_000 });
      assert.equal(await p.evaluate(() => sessionStorage.getItem('phare.token')), token);
      assert.equal(
        await p.locator('#who').textContent(),
        `token …${token.slice(-4)}`,
        'never the whole secret',
      );
      await shot(p, '13-acl-read-token');
      await p.locator('#logout').click();
      await p.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
      assert.equal(await p.evaluate(() => sessionStorage.getItem('phare.token')), null);
    } finally {
      await p.close();
      await acl.close();
    }
  });

  test('a clear banner when the agent stops answering', async () => {
    const other = await startTestAgent({ node: 'short-lived' });
    const p = await browser.newPage();
    try {
      await p.goto(`${other.url}/ui/`);
      await p.locator('[data-service="consul"]').waitFor();
      assert.equal(await p.locator('#banner').isHidden(), true);
      await other.close();
      await p.locator('#banner').waitFor({ state: 'visible', timeout: 15_000 });
      assert.match(
        (await p.locator('#banner').textContent()) ?? '',
        /is not answering\. Retrying; what you see is the last data received/,
      );
      assert.equal(await p.locator('[data-service="consul"]').count(), 1, 'the last data stays');
      await shot(p, '13-unreachable');
    } finally {
      await p.close();
    }
  });

  test('usable at 390 px: nothing wider than the screen, every view reachable', async () => {
    const p = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    try {
      const fits = async (what: string) => {
        const width = Number(await p.evaluate('document.documentElement.scrollWidth'));
        assert.ok(width <= 390, `${what}: the page is ${width} px wide at a 390 px viewport`);
      };
      await p.goto(`${agent.url}/ui/`);
      await p.locator('[data-counts="web"] .critical').waitFor();
      await fits('services');
      await shot(p, '14-narrow-services');
      await p.locator('[data-service="web"]').click();
      await p.locator('[data-instance="web-1"]').waitFor();
      await fits('service');
      await shot(p, '15-narrow-service');
      for (const tab of ['nodes', 'members', 'kv']) {
        await p.locator(`#tabs [data-tab="${tab}"]`).click();
        await p.locator('#view .list, #view [data-empty]').first().waitFor();
        await fits(tab);
      }
      await shot(p, '16-narrow-kv');
    } finally {
      await p.close();
    }
  });
});
