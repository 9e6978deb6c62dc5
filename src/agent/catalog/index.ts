export {
  Catalog,
  type CatalogEvent,
  type CatalogOptions,
  type LifecycleEvent,
  type LocalNode,
  MAINTENANCE,
  Topic,
} from './catalog.ts';
export * from './model.ts';
