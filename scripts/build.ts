/**
 * `npm run build` (and `prepack`): a clean dist/ for the published package — ESM JavaScript, `.d.ts` with
 * declaration maps, source maps — plus the web UI's static files, which the agent serves from `dist/ui`.
 * The checkout itself never needs this: it runs src/ directly (see README, "Working in the checkout").
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: root,
    stdio: ['ignore', 2, 2],
  },
);
if (tsc.status !== 0) {
  process.stderr.write('build: tsc failed\n');
  process.exit(tsc.status ?? 1);
}
// tsc rewrites `./x.ts` to `./x.js` in JavaScript but keeps `.ts` in declarations; a consumer's tsc then
// looks for sources we do not ship. Point the declarations at their `.js` siblings, as the JavaScript does.
const relativeTs = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const file = join(entry.parentPath, entry.name);
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(relativeTs, '$1$2.js$3');
  if (fixed !== text) writeFileSync(file, fixed);
}
cpSync(join(root, 'src', 'ui'), join(dist, 'ui'), { recursive: true });
if (!existsSync(join(dist, 'cli', 'main.js'))) {
  process.stderr.write('build: dist/cli/main.js is missing\n');
  process.exit(1);
}
process.stderr.write('build: dist/ written\n');
