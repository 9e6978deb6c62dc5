import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { annotateListeners, listListeners, parseProcNetTcp } from './in-use.ts';
import { parsePorts } from './model.ts';
import { nextFreePort } from './next.ts';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F41 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F4A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F4B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0000000000000000 100 0 0 10 0
`;

test('parses /proc/net/tcp and tcp6 listening sockets (other states skipped)', () => {
  assert.deepEqual(parseProcNetTcp(TCP, 4), [
    { family: 4, address: '127.0.0.1', port: 8000, uid: 1000, inode: 4242 },
  ]);
  assert.deepEqual(
    parseProcNetTcp(TCP6, 6).map((l) => `${l.address} ${l.port}`),
    ['::1 8010', '::ffff:7f00:1 8011'],
  );
});

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port }, () => resolve(s));
  });
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

function modelWith(from: number, to: number, allocated: number) {
  const { model, problems } = parsePorts(
    `version: 1
environments:
  test: { range: { from: ${from}, to: ${to} } }
components:
  api: { ports: { test: ${allocated} } }
`,
    '/tmp/ports.yaml',
  );
  assert.deepEqual(problems, []);
  return model!;
}

test('in-use sees a real listening socket, marks its owner, and flags unallocated ports in a range', async () => {
  const owned = await listen();
  const stray = await listen();
  try {
    const a = portOf(owned);
    const b = portOf(stray);
    const model = modelWith(Math.min(a, b), Math.max(a, b), a);
    const listeners = await listListeners();
    const mine = listeners.find((l) => l.port === a && l.address === '127.0.0.1');
    assert.ok(mine, `port ${a} not in ${JSON.stringify(listeners.map((l) => l.port))}`);
    assert.equal(mine.pid, process.pid);
    const entries = annotateListeners(model, listeners);
    const e = entries.find((x) => x.port === a)!;
    assert.equal(e.status, 'allocated');
    assert.equal(e.owners[0]!.owner, 'api');
    assert.equal(e.range, 'test');
    assert.equal(entries.find((x) => x.port === b)!.status, 'unallocated');
  } finally {
    await close(owned);
    await close(stray);
  }
});

test('next skips ports allocated in the file and ports something listens on', async () => {
  const busy = await listen();
  try {
    const p = portOf(busy);
    // Range starts two below the busy port; the first is allocated in the file, the second may be free.
    const model = modelWith(p - 2, p + 20, p - 2);
    const next = await nextFreePort(model, 'test');
    assert.notEqual(next, p - 2);
    assert.notEqual(next, p);
    assert.ok(next > p - 2 && next <= p + 20);
    // Nothing but the listener: with a one-port range, the range is full.
    await assert.rejects(nextFreePort(modelWith(p, p, p + 1 > 65535 ? p - 1 : p + 1), 'test'), {
      code: 'PHARE_ERR_INVALID_ARGUMENT',
      message: /no free port left in test/,
    });
    await assert.rejects(nextFreePort(model, 'staging'), { message: /"staging" is not an environment/ });
  } finally {
    await close(busy);
  }
});
