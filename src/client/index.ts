/** The SDK's door: everything `phare` exports comes through here. */
export * from './api/index.ts';
export * from './balancer/index.ts';
export * from './discovery/index.ts';
export * from './http/index.ts';
export * from './registration/index.ts';
