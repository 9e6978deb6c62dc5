/**
 * The web UI in a real browser (Debian chromium driven by playwright-core): services and instances show,
 * and a check going critical changes the page without a reload (blocking queries).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startTestAgent, type TestAgent } from '../../src/testing/index.ts';
import { dependencySkip } from '../helpers/requires.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = dependencySkip(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} (apt-get install chromium)`);

let agent: TestAgent;
let browser: Browser;
let page: Page;

async function put(path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${agent.url}${path}`, {
    method: 'PUT',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

before(async () => {
  if (skip) return;
  agent = await startTestAgent();
  for (const i of [1, 2]) {
    await put('/v1/agent/service/register', {
      Name: 'web',
      ID: `web-${i}`,
      Address: '127.0.0.1',
      Port: 8080 + i,
      Tags: ['v1', '<b>not html</b>'],
      Check: { CheckID: `web-${i}-ttl`, Name: 'web alive', TTL: '60s', Status: 'passing' },
    });
  }
  await put('/v1/agent/service/register', { Name: 'db', Port: 5432 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  page = await browser.newPage();
});

after(async () => {
  await browser?.close();
  await agent?.close();
});

test('the UI lists services with their health and shows a service instances', { skip }, async () => {
  await page.goto(`${agent.url}/`);
  assert.match(page.url(), /\/ui\/$/, '/ redirects to the UI');
  await page.locator('[data-service="web"]').waitFor();
  assert.deepEqual(
    await page
      .locator('#services [data-service]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-service'))),
    ['consul', 'db', 'web'],
  );
  assert.equal(await page.locator('[data-service="web"] .dot').getAttribute('aria-label'), 'passing');
  assert.match((await page.locator('#agent').textContent()) ?? '', /node test-node · dc1/);

  await page.locator('[data-service="web"]').click();
  await page.locator('tr[data-instance="web-2"]').waitFor();
  assert.equal(await page.locator('tr[data-instance]').count(), 2);
  assert.equal(await page.locator('tr[data-instance="web-1"] [data-status]').textContent(), 'passing');
  // API data is text, never markup
  assert.equal(await page.locator('#detail b').count(), 0);
  assert.ok((await page.locator('#detail').textContent())?.includes('<b>not html</b>'));
  await page.screenshot({ path: `${process.env['PHARE_UI_SCREENSHOT'] ?? '/tmp/phare-ui.png'}` });
});

test('a failing check turns the instance critical on the open page, without a reload', { skip }, async () => {
  await put('/v1/agent/check/fail/web-1-ttl?note=database%20unreachable');
  await page.locator('tr[data-instance="web-1"] [data-status="critical"]').waitFor({ timeout: 10_000 });
  assert.match((await page.locator('tr[data-instance="web-1"]').textContent()) ?? '', /database unreachable/);
  await page.locator('[data-service="web"] .dot.critical').waitFor({ timeout: 10_000 });
  // a new instance appears too
  await put('/v1/agent/service/register', { Name: 'web', ID: 'web-3', Port: 8083 });
  await page.locator('tr[data-instance="web-3"]').waitFor({ timeout: 10_000 });
  // the filter box narrows the list
  await page.locator('#search').fill('we');
  assert.equal(await page.locator('#services [data-service]').count(), 1);
});
