// A/B microbench: client CPU µs per call, plain undici Pool vs phare client.get (static discovery), backend in a child.
import { spawn } from 'node:child_process';
import { Pool } from 'undici';
import { pino } from 'pino';
import { createDiscovery, createServiceClient, staticResolver } from '/work/wt/s10-lead/src/index.ts';
const child = spawn('taskset', ['-c', '1', process.execPath, '/work/wt/s10-lead/bench/sdk.ts', '--backend', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port: number = await new Promise((r) => child.stdout.on('data', (d) => { const m = /PORTS (\d+)/.exec(String(d)); if (m) r(Number(m[1])); }));
const url = `http://127.0.0.1:${port}`;
const logger = pino({ level: 'silent' });
const pool = new Pool(url, { connections: 64 });
const discovery = createDiscovery({ resolver: staticResolver({ services: { svc: [url] } }), logger });
const client = createServiceClient({ discovery, logger });
const C = 32, N = Number(process.env.N ?? 20000);
async function run(fn: () => Promise<void>) {
  let left = N;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => { while (left-- > 0) await fn(); }));
  const c = process.cpuUsage(c0); const t = performance.now() - t0;
  return { us: (c.user + c.system) / N, rate: N / t * 1000 };
}
const plain = async () => { const r = await pool.request({ path: '/items/1', method: 'GET' }); await r.body.dump(); };
const sdk = async () => { const r = await client.get('svc', '/items/1'); await r.body.dump(); };
await run(plain); await run(sdk);
const res: Record<string, number[]> = { plain: [], sdk: [] };
for (let i = 0; i < Number(process.env.R ?? 6); i++) {
  for (const [k, f] of (i % 2 ? [['sdk', sdk], ['plain', plain]] : [['plain', plain], ['sdk', sdk]]) as [string, () => Promise<void>][]) {
    const m = await run(f); res[k].push(m.us);
  }
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log('plain', res.plain.map((x) => x.toFixed(1)).join(' '), 'med', med(res.plain).toFixed(2));
console.log('sdk  ', res.sdk.map((x) => x.toFixed(1)).join(' '), 'med', med(res.sdk).toFixed(2));
await client.close(); await discovery.close(); await pool.close(); child.kill();
