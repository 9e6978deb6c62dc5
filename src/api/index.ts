export * from './duration.ts';
export * from './errors.ts';
export type * from './types.ts';
