export type { ClusterView } from './context.ts';
export { createHttpApi, type HttpApi, type HttpApiOptions } from './server.ts';
export { loadCa, loadTls, type TlsFiles } from './tls.ts';
