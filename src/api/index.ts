export * from './duration.ts';
export * from './errors.ts';
export { DEADLINE_HEADER, worstStatus } from './shared.ts';
export type * from './types.ts';
export { CONSUL_VERSION } from './types.ts';
export { phareVersion } from './version.ts';
