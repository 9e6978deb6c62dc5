/**
 * Certificates made by the test with Debian's `openssl` (nothing checked in): a CA, and leaf certificates
 * it signs for servers (with SANs) and clients. Files live in a temp directory removed by `remove()`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A CA under `dir`, able to sign leaves. */
export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM file). */
  readonly caFile: string;
  /** Signs a new leaf; `san` like `IP:127.0.0.1,DNS:localhost`; `client` makes a client certificate. */
  leaf(name: string, options?: { san?: string; client?: boolean }): { certFile: string; keyFile: string };
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Makes a CA (EC P-256, fast to generate).
 *
 * @example
 * const ca = makeTestCa('agent-ca');
 * const server = ca.leaf('agent', { san: 'IP:127.0.0.1,DNS:localhost' });
 */
export function makeTestCa(
  commonName = 'Phare Test CA',
  dir = mkdtempSync(join(tmpdir(), 'phare-tls-')),
): TestCa {
  const tag = commonName.replace(/\W+/g, '-');
  const caKey = join(dir, `${tag}-ca-key.pem`);
  const caFile = join(dir, `${tag}-ca.pem`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      caKey,
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${commonName}`,
      '-out',
      caFile,
    ],
    dir,
  );
  let serial = 1;
  return {
    dir,
    caFile,
    leaf(name, options = {}) {
      const keyFile = join(dir, `${name}-key.pem`);
      const csr = join(dir, `${name}.csr`);
      const certFile = join(dir, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      const lines = [
        'basicConstraints=CA:FALSE',
        `extendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth'}`,
      ];
      if (options.san) lines.push(`subjectAltName=${options.san}`);
      writeFileSync(ext, `${lines.join('\n')}\n`);
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], dir);
      openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-out', csr], dir);
      openssl(
        [
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          caFile,
          '-CAkey',
          caKey,
          '-set_serial',
          String(serial++),
          '-days',
          '2',
          '-sha256',
          '-extfile',
          ext,
          '-out',
          certFile,
        ],
        dir,
      );
      return { certFile, keyFile };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
