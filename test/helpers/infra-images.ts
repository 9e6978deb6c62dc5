/**
 * Local stand-ins for the `postgres:16` and `redis:7` images the example monorepo's compose files name (no
 * registry is reachable here). One rootfs — the cached Debian bookworm minbase (test/helpers/docker.ts)
 * without Node, plus the host's own PostgreSQL 15 and Redis binaries (Debian packages, the same release as
 * the base) with the shared libraries the base lacks — is built once and cached under the same content-key
 * scheme, then imported into an engine and tagged with the names the compose files use. The entrypoints
 * mimic the official images where the example relies on it: POSTGRES_USER / POSTGRES_PASSWORD /
 * POSTGRES_DB, `pg_isready` on PATH, data in /var/lib/postgresql/data (a tmpfs there works), listening on
 * 5432; `redis-server` and `redis-cli` on PATH, listening on 6379 without protected mode.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import lockfile from 'proper-lockfile';
import { baseRootfs, type Dockerd } from './docker.ts';
import { dependencySkip } from './requires.ts';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const RECIPE = 'infra-pg15-redis-v1';

/** `false`, or the skip reason (throws in CI) when the host lacks PostgreSQL 15 or Redis. */
export function infraImagesSkip(): string | false {
  const missing: string[] = [];
  if (!existsSync(join(PG_BIN, 'postgres'))) missing.push('postgresql-15 (apt-get install postgresql)');
  if (!existsSync('/usr/bin/redis-server')) missing.push('redis-server (apt-get install redis-server)');
  return dependencySkip(missing.join(', ') || undefined);
}

const PG_ENTRYPOINT = `#!/bin/sh
# what the official image's docker-entrypoint.sh does for the example: a cluster made on first start
set -e
: "\${PGDATA:=/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user="\${POSTGRES_USER:-postgres}"
  printf '%s\\n' "\${POSTGRES_PASSWORD:-postgres}" > /tmp/pwfile
  initdb -D "$PGDATA" -U "$user" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 \\
    --encoding=UTF8 --locale=C >/dev/null
  rm -f /tmp/pwfile
  if [ "\${POSTGRES_HOST_AUTH_METHOD:-}" = trust ]; then method=trust; else method=scram-sha-256; fi
  echo "host all all all $method" >> "$PGDATA/pg_hba.conf"
  db="\${POSTGRES_DB:-$user}"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \\"$db\\" OWNER \\"$user\\"" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "PostgreSQL init process complete; ready for start up."
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off "$@"
`;

async function sh(script: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', script], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function contentKey(baseKey: string): Promise<string> {
  const pg = (await run(join(PG_BIN, 'postgres'), ['--version'])).stdout.trim();
  const redis = (await run('/usr/bin/redis-server', ['--version'])).stdout.trim();
  return createHash('sha256')
    .update(`${RECIPE}\n${baseKey}\n${pg}\n${redis}\n${PG_ENTRYPOINT}`)
    .digest('hex')
    .slice(0, 16);
}

/** Builds (once, under a lock) the infra rootfs tarball; resolves with its path and key. */
export async function infraRootfs(): Promise<{ tar: string; key: string }> {
  const base = await baseRootfs();
  const dir = dirname(base.tar);
  const key = await contentKey(base.key);
  const tar = join(dir, `infra-${key}.tar`);
  if (existsSync(tar)) return { tar, key };
  const release = await lockfile.lock(dir, {
    lockfilePath: join(dir, 'infra-build.lock'),
    retries: { retries: 600, minTimeout: 1000, maxTimeout: 1000 },
    stale: 30_000,
  });
  try {
    if (existsSync(tar)) return { tar, key };
    const work = await mkdtemp(join(dir, 'infra-build-'));
    try {
      const root = join(work, 'rootfs');
      mkdirSync(root);
      await sh(`tar -xf "${base.tar}" -C "${root}" --exclude=./usr/local/bin/node`);
      // the host's PostgreSQL 15 (bin, lib without the LLVM JIT, share) and Redis
      await sh(
        `set -e; cd "${root}"; mkdir -p usr/lib/postgresql usr/share/postgresql; ` +
          `cp -a /usr/lib/postgresql/15 usr/lib/postgresql/; rm -f usr/lib/postgresql/15/lib/llvmjit*; rm -rf usr/lib/postgresql/15/lib/bitcode; ` +
          `cp -a /usr/share/postgresql/15 usr/share/postgresql/; ` +
          `for b in postgres initdb pg_ctl pg_isready psql; do ln -sf /usr/lib/postgresql/15/bin/$b usr/local/bin/$b; done; ` +
          `cp -L /usr/bin/redis-server usr/local/bin/redis-server; cp -L /usr/bin/redis-cli usr/local/bin/redis-cli`,
      );
      // shared libraries those binaries need and the base does not hold (same Debian release: same ABI)
      const elves = [
        ...readdirSync(join(root, 'usr/lib/postgresql/15/bin')).map((f) => `/usr/lib/postgresql/15/bin/${f}`),
        ...readdirSync(join(root, 'usr/lib/postgresql/15/lib'))
          .filter((f) => f.endsWith('.so'))
          .map((f) => `/usr/lib/postgresql/15/lib/${f}`),
        '/usr/bin/redis-server',
        '/usr/bin/redis-cli',
      ];
      const libs = new Set<string>();
      for (const elf of elves) {
        const out = await run('ldd', [elf]).then(
          (r) => r.stdout,
          () => '',
        );
        for (const m of out.matchAll(/=> (\/\S+) \(/g)) if (m[1]) libs.add(m[1]);
      }
      const missing = [...libs].filter(
        (l) => !existsSync(join(root, 'usr/lib/x86_64-linux-gnu', l.split('/').pop() as string)),
      );
      if (missing.length)
        await sh(`cp -L ${missing.map((l) => `"${l}"`).join(' ')} "${root}/usr/lib/x86_64-linux-gnu/"`);
      writeFileSync(join(root, 'usr/local/bin/docker-entrypoint-postgres'), PG_ENTRYPOINT, { mode: 0o755 });
      await sh(
        `set -e; chroot "${root}" groupadd -r -g 999 postgres; chroot "${root}" useradd -r -u 999 -g 999 -d /var/lib/postgresql postgres; ` +
          `chroot "${root}" mkdir -p /var/lib/postgresql/data /run/postgresql; chroot "${root}" chown -R postgres:postgres /var/lib/postgresql /run/postgresql; ` +
          `chroot "${root}" redis-server --version >/dev/null; chroot "${root}" postgres --version >/dev/null; ` +
          `cd "${root}" && tar --numeric-owner -cf "${work}/infra.tar" .`,
      );
      renameSync(join(work, 'infra.tar'), tar);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return { tar, key };
  } finally {
    await release();
  }
}

/** The image names the example monorepo's compose files use. */
export const INFRA_IMAGES = { postgres: 'postgres:16', redis: 'redis:7' } as const;

/**
 * Makes `postgres:16` and `redis:7` exist in `engine` (imported from the cached rootfs on first use).
 *
 * @example
 * await infraImages(engine);
 * await engine.docker('run', '-d', '-e', 'POSTGRES_PASSWORD=pw', 'postgres:16');
 */
export async function infraImages(engine: Dockerd): Promise<void> {
  const { tar, key } = await infraRootfs();
  const tag = `phare-test-infra:${key}`;
  if (!(await engine.docker('images', '-q', tag)))
    await engine.docker(
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      tar,
      tag,
    );
  const ctx = await mkdtemp(join('/tmp', 'phi-'));
  try {
    const build = async (name: string, dockerfile: string) => {
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${tag}\n${dockerfile}`);
      await engine.docker('build', '-q', '-t', name, ctx);
    };
    await build(
      INFRA_IMAGES.postgres,
      'ENV PGDATA=/var/lib/postgresql/data\nSTOPSIGNAL SIGINT\nEXPOSE 5432\nENTRYPOINT ["docker-entrypoint-postgres"]\n',
    );
    await build(
      INFRA_IMAGES.redis,
      'EXPOSE 6379\nWORKDIR /data\nCMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]\n',
    );
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}
