/**
 * One pino logger per service, JSON lines on stdout (run.ts pretty-prints them; in production a log
 * shipper reads them as they are).
 */
import { type Logger, pino } from 'pino';

export function createLogger(service: string, level: string): Logger {
  return pino({ level, base: { service, pid: process.pid } });
}
