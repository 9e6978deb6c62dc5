export * from './duration.ts';
export * from './errors.ts';
export type * from './types.ts';
export { CONSUL_VERSION } from './types.ts';
