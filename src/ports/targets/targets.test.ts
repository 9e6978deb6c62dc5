import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Allocation, ResolvedTarget } from '../model.ts';
import { dotenvEditor } from './dotenv.ts';
import { jsonEditor } from './json.ts';
import { composeEnvEditor, composePortEditor, yamlEditor } from './yaml.ts';

const alloc: Allocation = {
  owner: 'api',
  kind: 'component',
  env: 'production',
  port: 8000,
  internal: 3000,
  key: [],
};
const target = (t: Partial<ResolvedTarget>): ResolvedTarget => ({
  type: 'yaml',
  allocation: alloc,
  env: 'production',
  file: 'f',
  path: '/f',
  value: 8000,
  origin: [],
  where: 'f x',
  ...t,
});

test('yaml: keeps quoting style, comments and list indentation; creates missing keys', () => {
  const t = target({ key: ['a', 'url'], value: 'ws://h:8000/x' });
  assert.equal(yamlEditor.write("a:\n  url: 'ws://h:1/x' # c\n", t), "a:\n  url: 'ws://h:8000/x' # c\n");
  assert.equal(yamlEditor.write('a:\n  url: "ws://h:1/x"\n', t), 'a:\n  url: "ws://h:8000/x"\n');
  assert.equal(yamlEditor.write('a:\n  url: x # c\n', t), 'a:\n  url: ws://h:8000/x # c\n');
  // a plain string that would read back as a number gets quoted
  assert.equal(
    yamlEditor.write('a:\n  url: x\n', target({ key: ['a', 'url'], value: '8000' })),
    'a:\n  url: "8000"\n',
  );
  assert.equal(yamlEditor.write('# top\nb: 1\n', t), '# top\nb: 1\na:\n  url: ws://h:8000/x\n');
  assert.equal(
    yamlEditor.write('s:\n- port: 1\n', target({ key: ['s', '0', 'port'] })),
    's:\n- port: 8000\n',
  );
  assert.throws(() => yamlEditor.write('a:\n  url: [1]\n', t), /a\.url holds a list or map/);
  assert.throws(() => yamlEditor.write('a: [\n', t), /f: invalid YAML at line/);
});

test('json: keeps indentation and the final newline (or its absence)', () => {
  const t = target({ type: 'json', key: ['listen', 'port'] });
  assert.equal(
    jsonEditor.write('{\n    "listen": { "port": 1 }\n}\n', t),
    '{\n    "listen": {\n        "port": 8000\n    }\n}\n',
  );
  assert.equal(jsonEditor.write('{"listen":{}}', t), '{"listen":{"port":8000}}');
  assert.equal(jsonEditor.read('{"listen":{"port":8000}}', t), 8000);
  assert.throws(() => jsonEditor.write('{"listen": 5}', t), /listen is a number/);
  assert.throws(() => jsonEditor.write('{', t), /invalid JSON/);
  assert.throws(() => jsonEditor.write('[]', t), /expected a JSON object/);
});

test('dotenv: export prefix, quotes, trailing comments, duplicates and CRLF', () => {
  const t = target({ type: 'dotenv', var: 'PORT', value: '8000' });
  assert.equal(dotenvEditor.write('export PORT = 1 # c\nX=1\n', t), 'export PORT = 8000 # c\nX=1\n');
  assert.equal(dotenvEditor.write("PORT='1' # c\n", t), "PORT='8000' # c\n");
  assert.equal(dotenvEditor.write('PORT=1\nPORT=2\n', t), 'PORT=8000\nPORT=8000\n');
  assert.equal(dotenvEditor.write('A=1\r\nPORT=1\r\n', t), 'A=1\r\nPORT=8000\r\n');
  assert.equal(dotenvEditor.write('A=1', t), 'A=1\nPORT=8000\n');
  assert.equal(dotenvEditor.write('', t), 'PORT=8000\n');
  assert.equal(dotenvEditor.read('PORTS=9\n#PORT=1\n', t), undefined);
  assert.equal(
    dotenvEditor.write('URL=x\n', target({ type: 'dotenv', var: 'URL', value: 'a b' })),
    'URL="a b"\n',
  );
});

test('compose: port mappings keep host IP, protocol and long syntax; env in map and list form', () => {
  const t = target({ type: 'compose-port', service: 'api', value: '8000:3000' });
  const svc = (ports: string) => `services:\n  api:\n    image: x\n    ports:\n${ports}`;
  assert.equal(
    composePortEditor.write(svc('      - "127.0.0.1:1:3000/udp"\n'), t),
    svc('      - "127.0.0.1:8000:3000/udp"\n'),
  );
  assert.equal(composePortEditor.write(svc('      - 3000\n'), t), svc('      - "8000:3000"\n'));
  assert.equal(
    composePortEditor.write(svc('      - "9229:9229" # debugger\n      - "1:3000"\n'), t),
    svc('      - "9229:9229" # debugger\n      - "8000:3000"\n'),
  );
  assert.equal(
    composePortEditor.write(svc('      - target: 3000\n        published: "1"\n'), t),
    svc('      - target: 3000\n        published: "8000"\n'),
  );
  assert.equal(
    composePortEditor.read(svc('      - target: 3000\n        published: 8000\n'), t),
    '8000:3000',
  );
  assert.equal(composePortEditor.write('services:\n  api:\n    image: x\n', t), svc('      - 8000:3000\n'));
  assert.throws(
    () => composePortEditor.write(svc('      - "1:1"\n      - "2:2"\n'), t),
    /has 2 entries and none maps container port 3000/,
  );
  assert.throws(() => composePortEditor.write('services: {}\n', t), /no service "api"/);

  const e = target({ type: 'compose-env', service: 'api', var: 'URL', value: 'http://db:5432' });
  assert.equal(
    composeEnvEditor.write('services:\n  api:\n    environment:\n      URL: old # c\n', e),
    'services:\n  api:\n    environment:\n      URL: http://db:5432 # c\n',
  );
  assert.equal(
    composeEnvEditor.write('services:\n  api:\n    environment:\n      - "URL=old"\n', e),
    'services:\n  api:\n    environment:\n      - "URL=http://db:5432"\n',
  );
  assert.equal(
    composeEnvEditor.write('services:\n  api:\n    environment:\n      - A=1\n', e),
    'services:\n  api:\n    environment:\n      - A=1\n      - URL=http://db:5432\n',
  );
  assert.equal(composeEnvEditor.read('services:\n  api:\n    environment:\n      URL: 5\n', e), '5');
});
