/** The SDK's door: everything `phare` exports comes through here. */
export * from './api/index.ts';
export * from './balancer/index.ts';
export type { ClientClock } from './clock.ts';
export * from './discovery/index.ts';
export * from './http/index.ts';
export * from './registration/index.ts';
