import type { FastifyReply } from 'fastify';
import { serialize } from './blocking.ts';
import { flag, type QueryParams } from './query.ts';

/** Sends a JSON value with `Content-Type: application/json` (no charset, as Consul). */
export function sendJson(reply: FastifyReply, value: unknown, status = 200): void {
  const pretty = flag(reply.request.query as QueryParams, 'pretty');
  reply.code(status).header('Content-Type', 'application/json').send(serialize(value, pretty));
}

/** Agent writes answer an empty 200: no body, no Content-Type. */
export function sendEmpty(reply: FastifyReply): void {
  reply.code(200).send();
}

/** A plain-text answer (errors, `format=text`). */
export function sendText(reply: FastifyReply, status: number, text: string): void {
  reply.code(status).header('Content-Type', 'text/plain; charset=utf-8').send(text);
}
