/** A port already taken stops the agent at start with a message naming the flag (exit code 2). */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';

async function run(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main(args, {
    stdout: () => {},
    stderr: (s) => {
      err += s;
    },
    env: {},
    cwd: process.cwd(),
  });
  return { code, err };
}

test('--http-addr and --dns-addr on a port in use fail with exit 2 naming the flag', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as { port: number }).port;
  try {
    const http = await run([
      'agent',
      '--dev',
      '--http-addr',
      `127.0.0.1:${port}`,
      '--dns-addr',
      '',
      '--log-level',
      'silent',
    ]);
    assert.equal(http.code, 2);
    assert.match(http.err, new RegExp(`--http-addr: 127\\.0\\.0\\.1:${port} is already in use`));
    const dns = await run([
      'agent',
      '--dev',
      '--http-addr',
      '127.0.0.1:0',
      '--dns-addr',
      `127.0.0.1:${port}`,
      '--log-level',
      'silent',
    ]);
    assert.equal(dns.code, 2);
    assert.match(dns.err, /--dns-addr/);
  } finally {
    taken.close();
  }
});
