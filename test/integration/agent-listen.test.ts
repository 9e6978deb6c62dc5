/** A port already taken stops the agent at start with a message naming the flag (exit code 2). */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main(args, {
    stdout: () => {},
    stderr: (s) => {
      err += s;
    },
    env,
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
    // the same words as the HTTP port: what is taken (which protocol), who may hold it, the flag to move it
    assert.match(
      dns.err,
      new RegExp(
        `^phare: --dns-addr: 127\\.0\\.0\\.1:${port} \\(tcp\\) is already in use \\(another agent, Consul, or a local DNS server\\?\\); choose another with --dns-addr`,
      ),
    );
    assert.doesNotMatch(dns.err, /\n\s+at /, 'no stack trace');
  } finally {
    taken.close();
  }
});

test('a busy UDP DNS port, and ports set through the environment, are named as the user set them', async () => {
  const { createSocket } = await import('node:dgram');
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const port = udp.address().port;
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const tcpPort = (taken.address() as { port: number }).port;
  try {
    const dns = await run(['agent', '--dev', '--http-addr', '127.0.0.1:0', '--log-level', 'silent'], {
      PHARE_DNS_ADDR: `127.0.0.1:${port}`,
    });
    assert.equal(dns.code, 2);
    assert.match(
      dns.err,
      new RegExp(`^phare: PHARE_DNS_ADDR: 127\\.0\\.0\\.1:${port} \\(udp\\) is already in use`),
    );
    const http = await run(['agent', '--dev', '--dns-addr', '', '--log-level', 'silent'], {
      PHARE_HTTP_ADDR: `127.0.0.1:${tcpPort}`,
    });
    assert.equal(http.code, 2);
    assert.match(
      http.err,
      new RegExp(`^phare: PHARE_HTTP_ADDR: 127\\.0\\.0\\.1:${tcpPort} is already in use`),
    );
  } finally {
    udp.close();
    taken.close();
  }
});
