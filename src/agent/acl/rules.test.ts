import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { LOG_REDACT } from '../logger.ts';
import { RulesAuthorizer } from './authorizer.ts';
import { emptyRules, mergeRules, parseRules, RulesError } from './rules.ts';

const authz = (text: string | string[], defaultPolicy: 'allow' | 'deny' = 'deny') => {
  const rules = emptyRules();
  for (const t of [text].flat()) mergeRules(rules, parseRules(t));
  return new RulesAuthorizer({ accessorId: 'a', rules, defaultPolicy, generation: 1 });
};

test('rules: an exact name beats the longest prefix, which beats a shorter one', () => {
  const a = authz(`
    service_prefix "" { policy = "read" }
    service_prefix "web-" { policy = "write" }
    service "web-admin" { policy = "deny" }
  `);
  assert.equal(a.allows('service', 'web-1', 'write'), true);
  assert.equal(a.allows('service', 'web-admin', 'read'), false);
  assert.equal(a.allows('service', 'db', 'read'), true);
  assert.equal(a.allows('service', 'db', 'write'), false);
  assert.equal(a.allows('node', 'n1', 'read'), false, 'no rule: the default (deny)');
});

test('rules: HCL and JSON give the same rules; write implies read; list is for keys', () => {
  const hcl = authz('key_prefix "app/" { policy = "list" }\nacl = "read"');
  const json = authz('{"key_prefix": {"app/": {"policy": "list"}}, "acl": "read"}');
  for (const a of [hcl, json]) {
    assert.equal(a.allows('key', 'app/x', 'read'), true);
    assert.equal(a.allows('key', 'app/x', 'list'), true);
    assert.equal(a.allows('key', 'app/x', 'write'), false);
    assert.equal(a.allows('acl', '', 'read'), true);
    assert.equal(a.allows('acl', '', 'write'), false);
  }
  assert.throws(() => parseRules('service "x" { policy = "list" }'), RulesError);
});

test('rules: several policies merge with deny over write over read (Consul policy merger)', () => {
  const a = authz(['service "web" { policy = "read" }', 'service "web" { policy = "write" }']);
  assert.equal(a.allows('service', 'web', 'write'), true);
  const b = authz(['service "web" { policy = "write" }', 'service "web" { policy = "deny" }']);
  assert.equal(b.allows('service', 'web', 'read'), false);
});

test('rules: default allow grants everything but ACL management', () => {
  const a = authz('', 'allow');
  assert.equal(a.allows('service', 'any', 'write'), true);
  assert.equal(a.allows('operator', '', 'write'), true);
  assert.equal(a.allows('acl', '', 'read'), false);
});

test("rules: syntax errors carry the HCL parser's position; unknown resources are named", () => {
  assert.throws(() => parseRules('service "x" {'), /Failed to parse ACL rules: At 1:/);
  assert.throws(() => parseRules('servce "x" { policy = "read" }'), /unknown resource "servce"/);
  assert.throws(() => parseRules('{"service": '), /Failed to parse ACL rules/);
});

test('authorizer: a denial names the accessor, the permission and the resource as Consul does', () => {
  const a = authz('');
  assert.throws(
    () => a.require('service', 'web', 'write'),
    (err: Error & { code?: string }) =>
      err.code === 'PHARE_ERR_PERMISSION_DENIED' &&
      err.message ===
        `Permission denied: token with AccessorID 'a' lacks permission 'service:write' on "web"`,
  );
  assert.throws(() => a.require('acl', '', 'write'), /lacks permission 'acl:write'$/);
});

test('logs: the agent logger redacts token headers, configured tokens and SecretIDs', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const log = pino({ redact: LOG_REDACT }, sink);
  const secret = '3f2e1d0c-9b8a-4765-8432-10fedcba9876';
  log.warn({ req: { headers: { 'x-consul-token': secret, authorization: `Bearer ${secret}` } } }, 'a');
  log.warn({ config: { aclInitialManagementToken: secret, aclDnsToken: secret } }, 'b');
  log.warn({ token: secret, SecretID: secret, accessorId: 'kept' }, 'c');
  const text = lines.join('');
  assert.equal(text.includes(secret), false, text);
  assert.match(text, /"accessorId":"kept"/);
  assert.equal((text.match(/\[redacted\]/g) ?? []).length, 6);
});
