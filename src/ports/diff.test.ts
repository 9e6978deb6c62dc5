import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unifiedDiff } from './diff.ts';

test('unified diff: hunks with 3 lines of context, merged when close, split when far', () => {
  const a = Array.from({ length: 20 }, (_, i) => `l${i + 1}`);
  const b = [...a];
  b[1] = 'L2';
  b[17] = 'L18';
  const diff = unifiedDiff('f.txt', `${a.join('\n')}\n`, `${b.join('\n')}\n`);
  assert.equal(
    diff,
    '--- a/f.txt\n+++ b/f.txt\n@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n l3\n l4\n l5\n' +
      '@@ -15,6 +15,6 @@\n l15\n l16\n l17\n-l18\n+L18\n l19\n l20\n',
  );
  assert.equal(unifiedDiff('f', 'same\n', 'same\n'), '');
  assert.equal(unifiedDiff('n.env', null, 'A=1\n'), '--- /dev/null\n+++ b/n.env\n@@ -0,0 +1,1 @@\n+A=1\n');
  assert.match(unifiedDiff('f', 'a', 'b'), /-a\n\\ No newline at end of file\n\+b\n\\ No newline/);
});
