export { createHttpApi, type HttpApi, type HttpApiOptions } from './server.ts';
