import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PhareError } from '../../api/index.ts';
import { compileFilter } from './index.ts';

/** A /v1/health/service entry as the agent renders it. */
const web = {
  Node: { ID: 'n1', Node: 'node-1', Address: '10.0.0.1', Datacenter: 'dc1', Meta: { rack: 'r1' } },
  Service: {
    ID: 'web-1',
    Service: 'web',
    Tags: ['v1', 'primary'],
    Meta: { 'app-ver': '1.2.3', team: 'edge' },
    Port: 8080,
    Address: '',
    EnableTagOverride: false,
    Weights: { Passing: 1, Warning: 1 },
  },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing', ServiceName: '', ServiceTags: [] },
    { CheckID: 'service:web-1', Status: 'critical', ServiceName: 'web', ServiceTags: ['v1', 'primary'] },
  ],
};

const api = {
  Node: { ID: 'n2', Node: 'node-2', Address: '10.0.0.2', Datacenter: 'dc1', Meta: {} },
  Service: { ID: 'api-1', Service: 'api', Tags: [], Meta: null, Port: 9090, Address: '10.0.0.9' },
  Checks: [],
};

function check(expression: string, item: unknown, expected: boolean): void {
  assert.equal(
    compileFilter(expression)(item),
    expected,
    `${expression} on ${String(JSON.stringify(item)).slice(0, 60)}`,
  );
}

function syntaxError(expression: string): PhareError {
  try {
    compileFilter(expression);
  } catch (err) {
    assert.ok(err instanceof PhareError, `expected a PhareError for ${JSON.stringify(expression)}`);
    assert.equal(err.code, 'PHARE_ERR_FILTER_SYNTAX');
    assert.equal(err.status, 400);
    assert.match(err.message, /^Failed to create boolean expression evaluator: \d+:\d+ \(\d+\): /);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(expression)} not to compile`);
}

describe('compileFilter: operators', () => {
  test('== and != on strings, bare identifiers and both quote styles', () => {
    check('Service.Service == web', web, true);
    check('Service.Service == "web"', web, true);
    check('Service.Service == `web`', web, true);
    check('Service.Service == api', web, false);
    check('Service.Service != api', web, true);
    check('Service.Service != "web"', web, false);
    check('Service.Service==web', web, true);
  });

  test('numbers compare numerically whether quoted or not', () => {
    check('Service.Port == 8080', web, true);
    check('Service.Port == "8080"', web, true);
    check('Service.Port == 8080.0', web, true);
    check('Service.Port == 80', web, false);
    check('Service.Port != 8080', web, false);
    check('Service.Port == abc', web, false);
    check('Service.Weights.Passing == 1', web, true);
  });

  test('booleans compare with true/false', () => {
    check('Service.EnableTagOverride == false', web, true);
    check('Service.EnableTagOverride == true', web, false);
    check('Service.EnableTagOverride != true', web, true);
    check('Service.EnableTagOverride == "false"', web, true);
  });

  test('is empty / is not empty on strings, arrays, maps and null', () => {
    check('Service.Address is empty', web, true);
    check('Service.Address is not empty', web, false);
    check('Service.Tags is not empty', web, true);
    check('Service.Tags is empty', api, true);
    check('Node.Meta is empty', api, true);
    check('Node.Meta is not empty', web, true);
    check('Service.Meta is empty', api, true);
    check('Checks is empty', api, true);
    check('Service.Port is empty', web, false);
  });

  test('in / contains on arrays, map keys and substrings', () => {
    check('"v1" in Service.Tags', web, true);
    check('v1 in Service.Tags', web, true);
    check('"v2" in Service.Tags', web, false);
    check('"v2" not in Service.Tags', web, true);
    check('Service.Tags contains primary', web, true);
    check('Service.Tags not contains primary', web, false);
    check('"app-ver" in Service.Meta', web, true);
    check('Service.Meta contains team', web, true);
    check('Service.Meta contains nope', web, false);
    check('Service.Meta not contains nope', web, true);
    check('Node.Address contains "0.0"', web, true);
    check('"10.0" in Node.Address', web, true);
    check('Node.Node not contains "-2"', web, true);
  });

  test('matches / not matches use a regular expression', () => {
    check('Service.Service matches "^w.b$"', web, true);
    check('Service.Service matches `^a`', web, false);
    check('Service.Service not matches "^a"', web, true);
    check('Node.Node matches "node-[0-9]+"', web, true);
    check('Service.Port matches "^80"', web, true);
    check('Service.Service matches "(?i)^WEB$"', web, true);
  });

  test('a value-shaped word before in (v1-beta, 1.2.3) is text, not a selector', () => {
    const item = { Tags: ['v1-beta', '1.2.3'] };
    check('v1-beta in Tags', item, true);
    check('1.2.3 in Tags', item, true);
    check('Tags contains v1-beta', item, true);
    check('Node.Address == 10.0.0.1', web, true);
  });
});

describe('compileFilter: logic', () => {
  test('and, or, not', () => {
    check('Service.Service == web and Service.Port == 8080', web, true);
    check('Service.Service == web and Service.Port == 1', web, false);
    check('Service.Service == api or Service.Port == 8080', web, true);
    check('Service.Service == api or Service.Port == 1', web, false);
    check('not Service.Service == api', web, true);
    check('not not Service.Service == api', web, false);
    check('not (Service.Service == web)', web, false);
    check('not(Service.Service == web)', web, false);
  });

  test('precedence is not > and > or', () => {
    // or binds loosest: true or (false and false)
    check('Service.Port == 8080 or Service.Port == 1 and Service.Port == 2', web, true);
    // and binds tighter than or on the left too: (false and true) or false
    check('Service.Port == 1 and Service.Port == 8080 or Service.Port == 2', web, false);
    // not applies to the nearest match only: (not false) and true
    check('not Service.Port == 1 and Service.Service == web', web, true);
    check('not Service.Port == 8080 or Service.Service == web', web, true);
  });

  test('parentheses override precedence and may nest', () => {
    check('(Service.Port == 8080 or Service.Port == 1) and Service.Port == 2', web, false);
    check('not (Service.Port == 1 or Service.Port == 8080)', web, false);
    check('((Service.Service == web))', web, true);
    check(' ( Service.Service == web ) and ( "v1" in Service.Tags or Service.Port == 1 ) ', web, true);
  });

  test('keywords are case-sensitive and whole words', () => {
    syntaxError('Service.Port == 8080 AND Service.Service == web');
    syntaxError('Service.Tags CONTAINS v1');
    check('Service.Service == android', { Service: { Service: 'android' } }, true);
    check('Service.Service == notes or Service.Service == orange', { Service: { Service: 'orange' } }, true);
  });

  test('whitespace, including newlines and tabs, separates tokens', () => {
    check('Service.Service ==\n\tweb\r\nand Service.Port == 8080', web, true);
  });
});

describe('compileFilter: selectors', () => {
  test('map keys with dashes via ["…"], plain map keys via .key', () => {
    check('Service.Meta["app-ver"] == "1.2.3"', web, true);
    check('Service.Meta[`app-ver`] == "1.2.3"', web, true);
    check('Service.Meta[ "app-ver" ] != "1.2.3"', web, false);
    check('Service.Meta.team == edge', web, true);
    check('Node.Meta.rack == r1', web, true);
    check('Service["Meta"]["team"] == edge', web, true);
    check('Service.Meta["a.b"] == x', { Service: { Meta: { 'a.b': 'x' } } }, true);
  });

  test('a selector through an array of objects matches if any element matches', () => {
    check('Checks.Status == critical', web, true);
    check('Checks.Status == passing', web, true);
    check('Checks.Status == warning', web, false);
    // Documented choice (go-bexpr's classic evaluator): != is also per element, so "some check is not passing".
    check('Checks.Status != passing', web, true);
    check('Checks.Status != warning', web, true);
    check('Checks.Status != passing', { Checks: [{ Status: 'passing' }] }, false);
    check('not Checks.Status == passing', { Checks: [{ Status: 'passing' }] }, false);
    check('Checks.ServiceTags contains primary', web, true);
    check('Checks.CheckID matches "^service:"', web, true);
    // An empty array has no element to match, for every operator.
    check('Checks.Status == passing', api, false);
    check('Checks.Status != passing', api, false);
  });

  test('a digit step indexes an array', () => {
    check('Checks.0.Status == passing', web, true);
    check('Checks.1.Status == passing', web, false);
    check('Service.Tags.1 == primary', web, true);
    check('Checks.5.Status is empty', web, true);
  });

  test('missing fields: == false, != true, is empty true, never a throw', () => {
    check('Service.Nope == x', web, false);
    check('Service.Nope != x', web, true);
    check('Service.Nope is empty', web, true);
    check('Service.Nope is not empty', web, false);
    check('x in Service.Nope', web, false);
    check('x not in Service.Nope', web, true);
    check('Service.Nope matches "."', web, false);
    check('Service.Nope not matches "."', web, true);
    check('Service.Meta["missing-key"] == x', web, false);
    check('Service.Meta["missing-key"] != x', web, true);
    check('Service.Port.Deeper == 1', web, false);
    check('Nope.Deeper.Still == 1', 'not an object', false);
    check('Nope != 1', null, true);
    check('Nope is empty', undefined, true);
  });

  test('inherited properties are not fields', () => {
    check('constructor is empty', {}, true);
    check('toString == x', {}, false);
    check('"constructor" in Meta', { Meta: {} }, false);
    check('__proto__ is empty', {}, true);
  });

  test('works on the other wire shapes (catalog service, agent service, check)', () => {
    const catalogService = {
      ServiceName: 'web',
      ServiceTags: ['v1'],
      ServiceMeta: { env: 'prod' },
      ServicePort: 80,
    };
    check('ServiceName == web and ServiceMeta.env == prod and ServicePort == 80', catalogService, true);
    const agentService = { ID: 'web-1', Service: 'web', Tags: ['v1'], Meta: {}, Port: 80 };
    check('Service == web and Tags contains v1', agentService, true);
    const healthCheck = { CheckID: 'c1', Status: 'critical', ServiceName: 'web' };
    check('Status == critical and ServiceName == web', healthCheck, true);
  });
});

describe('compileFilter: literals', () => {
  test('double-quoted strings decode Go escapes; raw strings do not', () => {
    check('Name == "a\\"b"', { Name: 'a"b' }, true);
    check('Name == "tab\\there"', { Name: 'tab\there' }, true);
    check('Name == "\\u00e9t\\x65"', { Name: 'éte' }, true);
    check('Name == `a\\"b`', { Name: 'a\\"b' }, true);
    check('Name == "with space"', { Name: 'with space' }, true);
    check('Name == ""', { Name: '' }, true);
  });

  test('negative and decimal numbers', () => {
    check('N == -5', { N: -5 }, true);
    check('N == 1.5', { N: 1.5 }, true);
    check('-5 in L', { L: [-5] }, true);
  });

  test('the compiled filter keeps its expression and is reusable', () => {
    const f = compileFilter('Service.Service == web');
    assert.equal(f.expression, 'Service.Service == web');
    assert.deepEqual([web, api, web].filter(f), [web, web]);
  });
});

describe('compileFilter: syntax errors say where and what was expected', () => {
  const cases: Array<[expr: string, where: string, text: RegExp]> = [
    ['', '1:1 (0)', /empty expression/],
    ['   ', '1:4 (3)', /empty expression/],
    ['Service.ID ==', '1:14 (13)', /expected a value after "==", found end of input/],
    [
      '(Service.ID == x',
      '1:17 (16)',
      /expected "and", "or" or "\)" to close the "\(" at 1:1, found end of input/,
    ],
    ['((a == 1) or (b == 2)', '1:22 (21)', /to close the "\(" at 1:1/],
    ['Foo ~= 3', '1:5 (4)', /expected an operator after the selector "Foo".*found "~="/],
    ['Foo = 3', '1:5 (4)', /expected an operator.*"==".*found "="/],
    ['Foo', '1:4 (3)', /expected an operator after the selector "Foo"/],
    ['Foo == "abc', '1:8 (7)', /unterminated string literal/],
    ['Foo == `abc', '1:8 (7)', /unterminated string literal/],
    ['Foo == x garbage', '1:10 (9)', /unexpected "garbage", expected "and", "or" or end of input/],
    ['Foo == 1)', '1:9 (8)', /unexpected "\)"/],
    ['Foo.', '1:5 (4)', /expected a field name after "."/],
    ['Foo[bar] == 1', '1:5 (4)', /expected a quoted map key after "\["/],
    ['Foo["x" == 1', '1:9 (8)', /expected "]" to close the "\[" at 1:4/],
    ['Foo matches "("', '1:13 (12)', /invalid regular expression "\(": Unterminated group/],
    [
      'a == 1 and',
      '1:11 (10)',
      /expected a selector, a value, "not" or "\(" after "and", found end of input/,
    ],
    ['a == 1 or or b == 2', '1:11 (10)', /expected a selector.*found "or"/],
    ['not', '1:4 (3)', /after "not", found end of input/],
    ['Foo is', '1:7 (6)', /expected "empty" or "not empty" after "is"/],
    ['Foo is not full', '1:12 (11)', /expected "empty" after "is not", found "full"/],
    ['Foo not equals x', '1:9 (8)', /expected "contains", "matches" or "in" after "not"/],
    ['"x" Foo', '1:5 (4)', /expected "in" or "not in" after the value "x"/],
    ['"x" in', '1:7 (6)', /expected a selector after "in", found end of input/],
    ['"x" in "y"', '1:8 (7)', /expected a selector after "in", found "\\"y\\""/],
    ['Foo == "a\\q"', '1:10 (9)', /invalid escape sequence/],
    ['== 1', '1:1 (0)', /expected a selector, a value, "not" or "\(", found "=="/],
    ['a == 1 and\n  (b == 2', '2:10 (20)', /to close the "\(" at 2:3, found end of input/],
    ['Foo ==\n', '2:1 (7)', /expected a value after "==", found end of input/],
  ];
  for (const [expr, where, text] of cases) {
    test(JSON.stringify(expr), () => {
      const err = syntaxError(expr);
      assert.ok(err.message.includes(`: ${where}: `), `${err.message} should point at ${where}`);
      assert.match(err.message, text);
    });
  }

  test('nesting is capped so a hostile expression is a syntax error, not a stack overflow', () => {
    const err = syntaxError(`${'('.repeat(100_000)}a == 1${')'.repeat(100_000)}`);
    assert.match(err.message, /nests more than/);
    syntaxError(`${'not '.repeat(100_000)}a == 1`);
    // Long flat chains are fine: and/or are loops, not recursion.
    const chain = Array.from({ length: 10_000 }, (_, i) => `N == ${i}`).join(' or ');
    assert.equal(compileFilter(chain)({ N: 9_999 }), true);
  });
});

describe('compileFilter: properties', () => {
  const tokens = [
    'Service',
    'Service.Tags',
    'Meta["a-b"]',
    'Checks.Status',
    'Port',
    '==',
    '!=',
    'is',
    'not',
    'empty',
    'in',
    'contains',
    'matches',
    'and',
    'or',
    '(',
    ')',
    '"x"',
    '`y`',
    '"(["',
    '8080',
    '-1.5',
    'passing',
    '[',
    ']',
    '.',
    '"\\',
    '\n',
  ];

  test('compileFilter throws nothing but PHARE_ERR_FILTER_SYNTAX on arbitrary input', () => {
    const input = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.string({ unit: fc.constantFrom(...'()[]."`\\ =!-_aZ09\n\t'), maxLength: 40 }),
      fc.array(fc.constantFrom(...tokens), { maxLength: 12 }).map((t) => t.join(' ')),
      fc.array(fc.constantFrom(...tokens), { maxLength: 12 }).map((t) => t.join('')),
    );
    fc.assert(
      fc.property(input, fc.jsonValue(), (expression, item) => {
        let filter: ((x: unknown) => boolean) | undefined;
        try {
          filter = compileFilter(expression);
        } catch (err) {
          assert.ok(err instanceof PhareError, `non-PhareError for ${JSON.stringify(expression)}: ${err}`);
          assert.equal(err.code, 'PHARE_ERR_FILTER_SYNTAX');
          return;
        }
        assert.equal(typeof filter(item), 'boolean');
      }),
      { numRuns: 3000 },
    );
  });

  const selector = fc.constantFrom(
    'Service.Service',
    'Service.Tags',
    'Service.Meta["a-b"]',
    'Service.Meta.k',
    'Service.Port',
    'Checks.Status',
    'Checks.0.Status',
    'a',
    'a.b.c',
  );
  const value = fc.constantFrom('x', '"x"', '`a-b`', '8080', '-1', 'true', 'passing', '""');
  const match = fc.oneof(
    fc
      .tuple(selector, fc.constantFrom('==', '!=', 'contains', 'not contains'), value)
      .map((t) => t.join(' ')),
    fc.tuple(selector, fc.constantFrom('is empty', 'is not empty')).map((t) => t.join(' ')),
    fc.tuple(value, fc.constantFrom('in', 'not in'), selector).map((t) => t.join(' ')),
    fc
      .tuple(selector, fc.constantFrom('matches', 'not matches'), fc.constantFrom('"^x"', '"[0-9]+"', '`.`'))
      .map((t) => t.join(' ')),
  );
  const { expr } = fc.letrec<{ expr: string }>((tie) => ({
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      match,
      tie('expr').map((e) => `not ${e}`),
      tie('expr').map((e) => `(${e})`),
      fc
        .tuple(tie('expr'), fc.constantFrom('and', 'or'), tie('expr'))
        .map(([a, op, b]) => `(${a}) ${op} (${b})`),
    ),
  }));
  // Items shaped like health entries but with arbitrary JSON in every slot.
  const item = fc.oneof(
    fc.jsonValue(),
    fc.record({
      Service: fc.record({
        Service: fc.oneof(fc.constant('x'), fc.jsonValue()),
        Tags: fc.oneof(fc.array(fc.constantFrom('x', 'a-b', 'passing')), fc.jsonValue()),
        Meta: fc.oneof(
          fc.dictionary(fc.constantFrom('a-b', 'k', 'x'), fc.constantFrom('x', '8080')),
          fc.jsonValue(),
        ),
        Port: fc.oneof(fc.constant(8080), fc.jsonValue()),
      }),
      Checks: fc.oneof(fc.array(fc.record({ Status: fc.constantFrom('passing', 'x', '') })), fc.jsonValue()),
      a: fc.jsonValue(),
    }),
  );

  test('valid expressions compile, never throw on arbitrary JSON, and obey not/and/or', () => {
    fc.assert(
      fc.property(expr, expr, item, (e1, e2, it) => {
        const f1 = compileFilter(e1);
        const f2 = compileFilter(e2);
        const r1 = f1(it);
        const r2 = f2(it);
        assert.equal(typeof r1, 'boolean');
        assert.equal(compileFilter(`not (${e1})`)(it), !r1);
        assert.equal(compileFilter(`(${e1}) and (${e2})`)(it), r1 && r2);
        assert.equal(compileFilter(`(${e1}) or (${e2})`)(it), r1 || r2);
      }),
      { numRuns: 1000 },
    );
  });
});
