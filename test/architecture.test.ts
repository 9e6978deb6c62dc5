/**
 * The layout rules of docs/architecture.md, held by code: every import specifier under src/ is read (with the
 * TypeScript parser, so type-only and dynamic imports are told apart) and checked. A failure names the file,
 * the line and the rule.
 *
 * - `api/` imports nothing of ours.
 * - The domain (`agent/catalog`, `agent/checks`, `agent/health`, `agent/kv`, `agent/sessions`, `agent/acl`)
 *   never imports the adapters `agent/http`, `agent/dns`, `agent/docker`.
 * - Adapters never touch `agent/store/`.
 * - `client/` never imports `agent/`.
 * - The CLI uses public entry points only (`phare`, `phare/agent`, …) and the doors of the folders it drives.
 * - An import that crosses into a sibling folder goes through that folder's `index.ts`.
 * - No import cycle (static value imports; type-only and dynamic imports cannot cycle at load time).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');

interface Import {
  /** Importing file, relative to src/ with `/` separators. */
  from: string;
  /** Imported file, relative to src/ (relative specifiers only). */
  to: string;
  line: number;
  typeOnly: boolean;
  dynamic: boolean;
}

const rel = (abs: string) => relative(SRC, abs).split(sep).join('/');

function sourceFiles(): string[] {
  return readdirSync(SRC, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Every relative import of every non-test file under src/. */
function imports(): Import[] {
  const out: Import[] = [];
  for (const file of sourceFiles()) {
    if (file.endsWith('.test.ts')) continue;
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const add = (spec: ts.Expression | undefined, node: ts.Node, typeOnly: boolean, dynamic: boolean) => {
      if (!spec || !ts.isStringLiteralLike(spec) || !spec.text.startsWith('.')) return;
      out.push({
        from: rel(file),
        to: rel(resolve(dirname(file), spec.text)),
        line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1,
        typeOnly,
        dynamic,
      });
    };
    const visit = (node: ts.Node) => {
      if (ts.isImportDeclaration(node)) {
        const c = node.importClause;
        const typeOnly =
          !!c &&
          (c.isTypeOnly ||
            (!c.name &&
              !!c.namedBindings &&
              ts.isNamedImports(c.namedBindings) &&
              c.namedBindings.elements.length > 0 &&
              c.namedBindings.elements.every((e) => e.isTypeOnly)));
        add(node.moduleSpecifier, node, typeOnly, false);
      } else if (ts.isExportDeclaration(node)) {
        const typeOnly =
          node.isTypeOnly ||
          (!!node.exportClause &&
            ts.isNamedExports(node.exportClause) &&
            node.exportClause.elements.length > 0 &&
            node.exportClause.elements.every((e) => e.isTypeOnly));
        add(node.moduleSpecifier, node, typeOnly, false);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        add(node.arguments[0], node, false, true);
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
        add(node.argument.literal, node, true, false);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

const ALL = imports();
const where = (i: Import) => `src/${i.from}:${i.line} imports src/${i.to}`;
const under = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);

function check(rule: string, bad: (i: Import) => boolean) {
  const found = ALL.filter(bad).map((i) => `  ${where(i)}`);
  assert.deepEqual(found, [], `rule "${rule}" is broken:\n${found.join('\n')}`);
}

test('the checker sees the imports (it cannot pass by reading nothing)', () => {
  assert.ok(ALL.length > 200, `only ${ALL.length} imports found under src/`);
  assert.ok(ALL.some((i) => i.typeOnly) && ALL.some((i) => i.dynamic) && ALL.some((i) => !i.typeOnly));
  assert.ok(ALL.some((i) => i.from === 'index.ts' && i.to.startsWith('client/')));
});

test('api/ imports nothing of ours', () => {
  check('api/ imports nothing of ours', (i) => under(i.from, 'api') && !under(i.to, 'api'));
});

const DOMAIN = ['agent/catalog', 'agent/checks', 'agent/health', 'agent/kv', 'agent/sessions', 'agent/acl'];
const ADAPTERS = ['agent/http', 'agent/dns', 'agent/docker'];

test('the domain never imports the adapters (http, dns, docker)', () => {
  check(
    'domain folders never import http/, dns/ or docker/',
    (i) => DOMAIN.some((d) => under(i.from, d)) && ADAPTERS.some((a) => under(i.to, a)),
  );
});

test('adapters never touch the store', () => {
  check(
    'adapters never touch store/',
    (i) => ADAPTERS.some((a) => under(i.from, a)) && under(i.to, 'agent/store'),
  );
});

test('client/ never imports agent/', () => {
  check('client/ never imports agent/', (i) => under(i.from, 'client') && under(i.to, 'agent'));
});

/** Public entry points (package.json `exports`), as files under src/. */
const ENTRY_POINTS = ['index.ts', 'agent/index.ts', 'health/index.ts', 'config/index.ts', 'testing/index.ts'];

test('the CLI uses public entry points (and the doors of the top-level folders it drives) only', () => {
  check('the CLI uses public entry points only', (i) => {
    if (!under(i.from, 'cli') || under(i.to, 'cli')) return false;
    if (ENTRY_POINTS.includes(i.to) || i.to === 'api/index.ts' || i.to === 'node-check.ts') return false;
    // a top-level folder's door (ports/, infra/) for the commands that drive it; never agent internals
    return !/^[a-z-]+\/index\.ts$/.test(i.to) || i.to.startsWith('agent/');
  });
});

test('phare/testing uses the public agent entry point only', () => {
  check(
    'testing/ uses public entry points only',
    (i) => under(i.from, 'testing') && under(i.to, 'agent') && i.to !== 'agent/index.ts',
  );
});

test("an import that crosses into a sibling folder goes through that folder's index.ts", () => {
  check('crossing into another folder goes through its index.ts', (i) => {
    const a = i.from.split('/').slice(0, -1);
    const b = i.to.split('/').slice(0, -1);
    let common = 0;
    while (common < a.length && common < b.length && a[common] === b[common]) common++;
    // the importer's own folder or an ancestor of it: no door to go through
    if (b.length === common) return false;
    // a parent importing its own sub-folder assembles it (index.ts files, agent.ts wiring)
    if (a.length === common) return false;
    const door = `${b.slice(0, common + 1).join('/')}/index.ts`;
    return i.to !== door;
  });
});

test('no import cycle', () => {
  const graph = new Map<string, Import[]>();
  for (const i of ALL) {
    if (i.typeOnly || i.dynamic) continue;
    const list = graph.get(i.from) ?? [];
    list.push(i);
    graph.set(i.from, list);
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: Import[] = [];
  const cycles: string[] = [];
  const dfs = (node: string) => {
    state.set(node, 'open');
    for (const edge of graph.get(node) ?? []) {
      const s = state.get(edge.to);
      if (s === 'open') {
        const start = stack.findIndex((e) => e.from === edge.to);
        const path = [...stack.slice(start === -1 ? stack.length : start), edge];
        cycles.push(path.map((e) => `src/${e.from}:${e.line}`).join(' -> ') + ` -> src/${edge.to}`);
      } else if (!s) {
        stack.push(edge);
        dfs(edge.to);
        stack.pop();
      }
    }
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) dfs(node);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
});

test('no test support inside src/ outside phare/testing', () => {
  const stray = sourceFiles()
    .map(rel)
    .filter((f) => /(^|\/)testing\.ts$/.test(f));
  assert.deepEqual(
    stray,
    [],
    'test helpers belong in test/helpers (or the public phare/testing entry point)',
  );
});

test('comments and docs cite only what ships with the repository (Consul docs, our docs), not private notes', () => {
  // the team's research notes live outside this repository: a citation of them is a dead reference to a reader
  const PRIVATE =
    /\b(consul-api|perf|anchors|ecosystem|aesthetics)\.md\b|\bresearch\/|\bshared\/(DESIGN|seeds|research)|\bDESIGN\.md\b/;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js|md|css|html|ya?ml|sh)$/.test(e.name)) files.push(p);
    }
  };
  for (const d of ['src', 'test', 'bench', 'docs', 'scripts', 'examples']) walk(join(ROOT, d));
  files.push(join(ROOT, 'README.md'));
  assert.ok(files.length > 100, `read only ${files.length} files`);
  const self = join(ROOT, 'test', 'architecture.test.ts');
  const hits = files
    .filter((f) => f !== self)
    .flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) =>
          PRIVATE.test(line) ? [`${relative(ROOT, f)}:${i + 1}: ${line.trim().slice(0, 100)}`] : [],
        ),
    );
  assert.deepEqual(
    hits,
    [],
    `cite Consul's documentation or this repository's docs instead:\n${hits.join('\n')}`,
  );
});
