/**
 * Stops at once, with one line, on a Node.js older than the one Phare needs (package.json `engines`), instead
 * of a stack trace from deep inside a dependency. Every entry point imports this module first, so it is
 * evaluated before any other of its imports.
 *
 * Kept free of imports and of syntax newer than Node 18 so that an old Node can still run it.
 */
const NEED = [22, 19];
const have = process.versions.node.split('.').map(Number);
const tooOld = (have[0] ?? 0) < (NEED[0] ?? 0) || (have[0] === NEED[0] && (have[1] ?? 0) < (NEED[1] ?? 0));
if (tooOld) {
  process.stderr.write(`phare needs Node >= ${NEED.join('.')}; this is ${process.version}\n`);
  process.exit(1);
}

export {};
