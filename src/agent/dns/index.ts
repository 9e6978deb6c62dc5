export { type ParsedName, parseName } from './names.ts';
export { type AnswerPlan, QTYPE, RCODE } from './records.ts';
export { createDnsServer, type DnsServer, type DnsServerOptions } from './server.ts';
