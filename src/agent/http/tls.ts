/**
 * TLS of the HTTPS API (issue 14): certificate files read at start and again on SIGHUP, TLS 1.2 or newer.
 *
 * `--tls-verify-incoming` asks every client for a certificate signed by `--tls-ca-file`, but the handshake
 * does not fail without one: the API (`/v1/`) answers 403 instead, and the web UI's files stay reachable.
 * Consul had to split `verify_incoming` into `verify_incoming_https` because requiring certificates at the
 * handshake locked browsers out of the UI (consul #1986, #2231, PR #2974).
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { phareError } from '../../api/index.ts';

/** The files of the HTTPS listener, by the flag that names them. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle for client certificates (and the agent's HTTPS checks). */
  caFile?: string | undefined;
  /** Require client certificates on the API. @default false */
  verifyIncoming?: boolean;
}

/** What node:tls needs, read from {@link TlsFiles}. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

/** TLS 1.2 is the floor (RFC 8996 deprecates 1.0 and 1.1); Node's own default, pinned here on purpose. */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

function read(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--${flag}: cannot read ${path}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/**
 * Reads and checks the files: a key that does not match its certificate, or a file that is not PEM, is an
 * error naming the flag — at start it stops the agent, on reload the old certificate stays in use.
 *
 * @example
 * const material = loadTls({ certFile: 'agent.pem', keyFile: 'agent-key.pem' });
 */
export function loadTls(files: TlsFiles): TlsMaterial {
  const cert = read('tls-cert-file', files.certFile);
  const key = read('tls-key-file', files.keyFile);
  const ca = files.caFile ? read('tls-ca-file', files.caFile) : undefined;
  try {
    createSecureContext({ cert, key, minVersion: TLS_MIN_VERSION });
  } catch (cause) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--tls-cert-file/--tls-key-file: ${files.certFile} and ${files.keyFile} are not a PEM certificate and its key (${(cause as Error).message})`,
      { cause },
    );
  }
  if (ca) {
    try {
      createSecureContext({ ca });
    } catch (cause) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `--tls-ca-file: ${files.caFile} is not a PEM CA bundle (${(cause as Error).message})`,
        { cause },
      );
    }
  }
  return ca ? { cert, key, ca } : { cert, key };
}

/** The options of the HTTPS server (and of `setSecureContext` on reload). */
export function serverTlsOptions(
  m: TlsMaterial,
  verifyIncoming: boolean,
): SecureContextOptions & {
  requestCert: boolean;
  rejectUnauthorized: false;
} {
  return {
    cert: m.cert,
    key: m.key,
    ...(m.ca ? { ca: m.ca } : {}),
    minVersion: TLS_MIN_VERSION,
    requestCert: verifyIncoming,
    // checked per request instead (see the file comment): the UI must stay reachable without a certificate
    rejectUnauthorized: false,
  };
}

/** A 403 text when `--tls-verify-incoming` is on and the request has no valid client certificate. */
export function checkClientCert(req: { url?: string | undefined; socket: unknown }): string | null {
  const path = (req.url ?? '').split('?')[0] ?? '';
  if (!path.startsWith('/v1/')) return null;
  const socket = req.socket as { authorized?: boolean; authorizationError?: Error | string };
  if (socket.authorized === true) return null;
  const why = socket.authorizationError ? ` (${String(socket.authorizationError)})` : '';
  return (
    `Client certificate required: the HTTPS API runs with --tls-verify-incoming and this connection has no ` +
    `certificate signed by --tls-ca-file${why}; the web UI stays reachable without one`
  );
}

/**
 * Reads a CA bundle (for HTTPS health checks), naming `--tls-ca-file` when it cannot.
 *
 * @example
 * const ca = loadCa('/etc/phare/ca.pem');
 */
export function loadCa(path: string): Buffer {
  const ca = read('tls-ca-file', path);
  try {
    createSecureContext({ ca });
  } catch (cause) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--tls-ca-file: ${path} is not a PEM CA bundle (${(cause as Error).message})`,
      {
        cause,
      },
    );
  }
  return ca;
}
