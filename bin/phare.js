#!/usr/bin/env node
// Entry point of the `phare` CLI.
//
// In a checkout (src/ present) it runs the TypeScript sources directly, so working on Phare needs no build
// step; the published package has no src/ and runs the compiled dist/. The version check comes first and
// uses nothing newer than Node 18, so an old Node prints one line instead of a stack trace.
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`phare needs Node >= 22.19; this is ${process.version}\n`);
  process.exit(1);
}

const module = await import('node:module');
module.enableCompileCache?.();
const fromSource = existsSync(new URL('../src/cli/main.ts', import.meta.url));
const { main } = await import(fromSource ? '../src/cli/main.ts' : '../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
