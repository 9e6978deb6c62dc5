export { createHttpApi, type HttpApi, type HttpApiOptions } from './server.ts';
export { loadCa, loadTls, type TlsFiles } from './tls.ts';
