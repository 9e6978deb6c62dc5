import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hexToIp, ipToHex, ipv6Bytes, parseName } from './names.ts';

test('service name forms (Consul docs, DNS interface (name forms))', () => {
  const svc = (service: string, tag: string | null, dc: string | null) => ({
    kind: 'service',
    service,
    tag,
    dc,
  });
  assert.deepEqual(parseName('web.service.consul', 'consul'), svc('web', null, null));
  assert.deepEqual(parseName('web.service.consul.', 'consul.'), svc('web', null, null));
  assert.deepEqual(parseName('WEB.Service.CONSUL', 'consul'), svc('web', null, null));
  assert.deepEqual(parseName('web.service.dc1.consul', 'consul'), svc('web', null, 'dc1'));
  assert.deepEqual(parseName('web.service.dc1.dc.consul', 'consul'), svc('web', null, 'dc1'));
  assert.deepEqual(parseName('v1.web.service.consul', 'consul'), svc('web', 'v1', null));
  assert.deepEqual(parseName('blue.green.web.service.consul', 'consul'), svc('web', 'blue.green', null));
  assert.deepEqual(parseName('_web._tcp.service.consul', 'consul'), svc('web', null, null));
  assert.deepEqual(parseName('_web._udp.service.dc1.consul', 'consul'), svc('web', 'udp', 'dc1'));
  assert.deepEqual(parseName('_web._v2.service.consul', 'consul'), svc('web', 'v2', null));
  assert.deepEqual(parseName('_web._tcp.consul', 'consul'), svc('web', null, null));
  assert.deepEqual(parseName('_web._tcp.dc1.consul', 'consul'), svc('web', null, 'dc1'));
  assert.deepEqual(parseName('web.service.example.org', 'example.org'), svc('web', null, null));
});

test('node and addr forms', () => {
  assert.deepEqual(parseName('n1.node.consul', 'consul'), { kind: 'node', node: 'n1', dc: null });
  assert.deepEqual(parseName('a.b.node.dc1.consul', 'consul'), { kind: 'node', node: 'a.b', dc: 'dc1' });
  assert.deepEqual(parseName('n1.node.dc1.dc.consul', 'consul'), { kind: 'node', node: 'n1', dc: 'dc1' });
  assert.deepEqual(parseName('0a000001.addr.dc1.consul', 'consul'), {
    kind: 'addr',
    ip: '10.0.0.1',
    dc: 'dc1',
  });
  assert.deepEqual(parseName('zz.addr.consul', 'consul'), { kind: 'invalid' });
});

test('outside, apex and invalid names', () => {
  assert.deepEqual(parseName('example.com', 'consul'), { kind: 'outside' });
  assert.deepEqual(parseName('notconsul', 'consul'), { kind: 'outside' });
  assert.deepEqual(parseName('consul', 'consul'), { kind: 'apex' });
  assert.deepEqual(parseName('service.consul', 'consul'), { kind: 'invalid' });
  assert.deepEqual(parseName('foo.consul', 'consul'), { kind: 'invalid' });
  assert.deepEqual(parseName('foo.bar.baz.consul', 'consul'), { kind: 'invalid' });
  assert.deepEqual(parseName('q.query.consul', 'consul'), { kind: 'invalid' });
  assert.deepEqual(parseName('a..service.consul', 'consul'), { kind: 'invalid' });
});

test('hex addresses round-trip', () => {
  assert.equal(hexToIp('7f000001'), '127.0.0.1');
  assert.equal(ipToHex('10.0.0.2', 4), '0a000002');
  assert.equal(ipToHex('fe80::1', 6), 'fe800000000000000000000000000001');
  assert.equal(hexToIp('fe800000000000000000000000000001'), 'fe80:0000:0000:0000:0000:0000:0000:0001');
  assert.equal(ipv6Bytes('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
  assert.equal(hexToIp('123'), null);
  assert.equal(hexToIp('0g000001'), null);
});
