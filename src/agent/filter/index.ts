export { type CompiledFilter, compileFilter } from './filter.ts';
