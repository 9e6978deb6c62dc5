/**
 * No state change from a web page on another origin (issue 14, "Browser and network safety"), in a real
 * browser (Debian chromium driven by playwright-core): a page served from 127.0.0.2 fires every vector a
 * page has without a CORS preflight — <img>, <script>, <iframe>, forms, no-cors fetch, beacons — at the
 * agent on 127.0.0.1, and a DNS-rebinding page (its name re-pointed at the agent) calls it same-origin.
 * The agent's state is unchanged; the agent's own origin still writes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { startTestAgent, type TestAgent } from '../../src/testing/index.ts';
import { dependencySkip } from '../helpers/requires.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = dependencySkip(existsSync(CHROMIUM) ? undefined : `${CHROMIUM} (apt-get install chromium)`);

let agent: TestAgent;
let browser: Browser;
let attacker: Server;
let attackerUrl: string;

async function put(path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${agent.url}${path}`, {
    method: 'PUT',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

/** The state a successful attack would change: victim's registration and its TTL check. */
async function state(): Promise<{ services: string[]; check: string | undefined }> {
  const services = Object.keys(
    (await (await fetch(`${agent.url}/v1/agent/services`)).json()) as object,
  ).sort();
  const checks = (await (await fetch(`${agent.url}/v1/agent/checks`)).json()) as Record<
    string,
    { Status: string }
  >;
  return { services, check: checks['victim-ttl']?.Status };
}

/** Requests the guard refused so far (phare_http_requests_total{code="403"}). */
async function refused(): Promise<number> {
  const text = await (await fetch(`${agent.url}/v1/agent/metrics?format=prometheus`)).text();
  let n = 0;
  for (const m of text.matchAll(/^phare_http_requests_total\{[^}]*code="403"[^}]*\} (\d+)/gm))
    n += Number(m[1]);
  return n;
}

async function waitRefused(atLeast: number): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const n = await refused();
    if (n >= atLeast || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every vector a page has to send a request without a CORS preflight, aimed at `a` (the agent's URL). */
function attackPage(a: string): string {
  return `<!doctype html><meta charset="utf-8"><title>attacker</title>
<img src="${a}/v1/agent/service/deregister/victim">
<script src="${a}/v1/agent/check/fail/victim-ttl"></script>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe><iframe name="sink3"></iframe>
<iframe src="${a}/v1/agent/check/warn/victim-ttl"></iframe>
<form id="f1" method="POST" action="${a}/v1/agent/service/deregister/victim" target="sink1"></form>
<form id="f2" method="GET" action="${a}/v1/agent/check/fail/victim-ttl" target="sink2"></form>
<form id="f3" method="POST" enctype="text/plain" action="${a}/v1/catalog/deregister" target="sink3">
  <input name='{"Node":"test-node","ServiceID":"victim","x":"' value='"}'></form>
<script>
  document.getElementById('f1').submit();
  document.getElementById('f2').submit();
  document.getElementById('f3').submit();
  fetch('${a}/v1/agent/check/fail/victim-ttl', { mode: 'no-cors' }).catch(() => {});
  fetch('${a}/v1/agent/service/deregister/victim', { mode: 'no-cors', method: 'POST' }).catch(() => {});
  // a CORS request with PUT is preflighted; the agent sends no Access-Control-Allow-* so the PUT never goes
  fetch('${a}/v1/agent/service/deregister/victim', { method: 'PUT' }).catch(() => {});
  navigator.sendBeacon('${a}/v1/agent/service/deregister/victim');
  navigator.sendBeacon('${a}/v1/agent/check/fail/victim-ttl', '');
</script>`;
}
/** Requests of attackPage that reach the agent and change state if let through. */
const VECTORS = 10;

before(async () => {
  if (skip) return;
  agent = await startTestAgent();
  await put('/v1/agent/service/register', {
    Name: 'victim',
    Port: 9000,
    Check: { CheckID: 'victim-ttl', TTL: '600s', Status: 'passing' },
  });
  const agentUrl = agent.url;
  attacker = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(attackPage(agentUrl));
  });
  // another loopback address is another origin (and another site) to the browser
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.2', r));
  attackerUrl = `http://127.0.0.2:${(attacker.address() as AddressInfo).port}/`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // rebind.test resolves to the agent: what DNS rebinding achieves after the page has loaded
    args: [
      '--no-sandbox',
      '--headless=new',
      '--host-resolver-rules=MAP rebind.test 127.0.0.1',
      // the browser's own Local Network Access block would stop this page first; the agent must not rely on
      // it (other browsers and older Chromium have none), so it is off here
      '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights',
    ],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((r) => (attacker ? attacker.close(r) : r(undefined)));
  await agent?.close();
});

test('a page on another origin changes nothing, by any vector', { skip }, async () => {
  const before = await state();
  assert.deepEqual(before, { services: ['victim'], check: 'passing' });
  const already = await refused();
  const page = await browser.newPage();
  await page.goto(attackerUrl);
  const n = await waitRefused(already + VECTORS);
  assert.equal(n - already, VECTORS, 'every vector reached the agent and was refused');
  assert.deepEqual(await state(), before);
  await page.close();
});

test('DNS rebinding: the same-origin page under a foreign name is refused, reads too', { skip }, async () => {
  const port = new URL(agent.url).port;
  const page = await browser.newPage();
  // the attacker's page, served under its own name; the name then "resolves" to the agent
  await page.route(`http://rebind.test:${port}/`, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>rebind</title>' }),
  );
  await page.goto(`http://rebind.test:${port}/`);
  const got = await page.evaluate(async () => {
    const w = await fetch('/v1/agent/service/deregister/victim', { method: 'PUT' });
    const r = await fetch('/v1/agent/services');
    return { write: w.status, read: r.status, text: await r.text() };
  });
  assert.equal(got.write, 403);
  assert.equal(got.read, 403);
  assert.match(got.text, /Host "rebind\.test:\d+" does not name this agent/);
  assert.deepEqual((await state()).services, ['victim']);
  await page.close();
});

test("the agent's own origin still changes state (its UI)", { skip }, async () => {
  const page = await browser.newPage();
  await page.goto(`${agent.url}/ui/`);
  const status = await page.evaluate(async () => {
    const res = await fetch('/v1/agent/check/warn/victim-ttl?note=from%20the%20ui', { method: 'PUT' });
    return res.status;
  });
  assert.equal(status, 200);
  assert.equal((await state()).check, 'warning');
  await put('/v1/agent/check/pass/victim-ttl');
  await page.close();
});
