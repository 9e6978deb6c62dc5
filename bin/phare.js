#!/usr/bin/env node
// Entry point of the `phare` CLI. Node >= 22.19 runs the TypeScript sources directly (type stripping);
// a published build points this at dist/ instead. The compile cache keeps cold starts short.
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
