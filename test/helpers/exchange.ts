/**
 * One HTTP(S) request on a fresh connection, answered as sent: status, headers with lower-cased names in
 * arrival order (`date` left out, it differs between any two answers), and the body as text. The fast-path
 * tests compare two answers of the agent with it, byte for byte.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** An answer as the server sent it. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `method url` with `headers` and `body` (none when undefined) on its own connection.
 *
 * @example
 * const a = await exchange(`${agent.url}/v1/catalog/services`);
 * assert.equal(a.headers['x-consul-index'], '12');
 */
export function exchange(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const { method = 'GET', headers = {}, body, tls } = options;
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(u, { method, headers, agent: false as const, ...(tls ?? {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const out: Record<string, string> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const name = (res.rawHeaders[i] as string).toLowerCase();
          if (name !== 'date') out[name] = res.rawHeaders[i + 1] as string;
        }
        resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString() });
      });
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else req.end(body);
  });
}
