/**
 * Runs inside a container on the test's network (Docker's DNS, 127.0.0.11, answers only there): idempotent
 * GETs to the service "users" through the SDK's dns resolver until every replica named in `DONE_HOSTS`
 * (comma-separated; the last ones the test starts) has answered 50 calls (at most 120 s), printing a JSON line
 * every 200 ms and at the end: calls answered per replica host name, and the failed calls with their errors.
 * Started by dns.test.ts.
 */
import { createDiscovery, createServiceClient, dnsResolver } from '../../src/index.ts';

const discovery = createDiscovery({
  // Docker answers with TTL 600 s; the cap makes a replaced replica's new IP visible within a second
  resolver: dnsResolver({
    servers: ['127.0.0.11'],
    name: (q) => q.service,
    port: 8080,
    families: [4],
    maxTtlMs: 1000,
  }),
});
const http = createServiceClient({ discovery });
const byHost: Record<string, number> = {};
const errors: string[] = [];
const until = Date.now() + 120_000;
const doneHosts = (process.env.DONE_HOSTS ?? 'users-4').split(',');
const done = () => Date.now() > until || doneHosts.every((h) => (byHost[h] ?? 0) >= 50);
const progress = setInterval(() => process.stdout.write(`${JSON.stringify({ byHost, errors })}\n`), 200);
await Promise.all(
  Array.from({ length: 4 }, async () => {
    while (!done()) {
      try {
        // the default deadline (10 s): a try to a replica that was just removed waits out its connect timeout (2 s)
        // before another instance is tried, twice when two of three replicas go at once
        const res = await http.get('users', '/', { deadlineMs: 10_000 });
        const host = await res.text();
        byHost[host] = (byHost[host] ?? 0) + 1;
      } catch (err) {
        errors.push(String((err as Error).message ?? err));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }),
);
clearInterval(progress);
process.stdout.write(`${JSON.stringify({ byHost, errors, done: true })}\n`);
await discovery.close();
process.exit(0);
