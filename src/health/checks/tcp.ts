/** TCP check: a connection can be opened (Consul's TCP check). */
import { connect } from 'node:net';
import { phareError } from '../../api/index.ts';
import type { CheckOptions, CheckSpec } from '../types.ts';

/** Options of {@link tcpCheck}. */
export interface TcpCheckOptions extends CheckOptions {
  host: string;
  port: number;
}

/**
 * Checks that a TCP connection to `host:port` opens, then closes it.
 *
 * @example
 * const health = createHealth({ checks: { smtp: tcpCheck({ host: 'mail.internal', port: 25, critical: false }) } });
 */
export function tcpCheck(options: TcpCheckOptions): CheckSpec {
  const { host, port, ...rest } = options;
  if (typeof host !== 'string' || host === '') {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `tcpCheck host: expected a host name or address, got ${JSON.stringify(host)}`,
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', `tcpCheck port: expected an integer 1-65535, got ${port}`);
  }
  const where = `${host}:${port}`;
  return {
    ...rest,
    run(signal) {
      return new Promise<string>((resolve, reject) => {
        const socket = connect({ host, port });
        const onAbort = () => socket.destroy();
        signal.addEventListener('abort', onAbort, { once: true });
        socket.once('connect', () => {
          signal.removeEventListener('abort', onAbort);
          socket.destroy();
          resolve(`connected to ${where}`);
        });
        socket.once('error', (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(new Error(`${where}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
        });
      });
    },
  };
}
