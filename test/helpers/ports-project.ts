/**
 * Test support for the ports tests: a throw-away project directory with a `ports.yaml` and the files it
 * syncs. Test-only; not exported from `src/ports/index.ts`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

/** A ports.yaml exercising every target type; its files start out of sync. */
export const PROJECT_PORTS = `# ports for the test project
version: 1
environments:
  production:
    range: { from: 18000, to: 18099 }
  development:
    range: { from: 19000, to: 19099 }
infrastructure:
  range: { from: 15000, to: 15099 }
  services:
    postgres:
      internal: 5432
      ports: { production: 15001, development: 15002 }
      targets:
        - { type: dotenv, file: 'env/{env}.env', var: PGPORT }
        - { type: compose-port, file: compose.yaml, service: postgres, env: production }
    redis:
      port: 15010
      targets:
        - { type: dotenv, file: 'env/{env}.env', var: REDIS_PORT }
components:
  api:
    ports:
      production: { port: 18000, internal: 3000 }
      development: 19000
    targets:
      - { type: yaml, file: 'api/{env}.yaml', key: server.port, value: '{internal}' }
      - { type: dotenv, file: 'env/{env}.env', var: API_PORT }
      - { type: compose-port, file: compose.yaml, service: api, env: production }
  bus:
    ports:
      production: { port: 18010, internal: 4000 }
      development: 19010
    targets:
      - { type: json, file: 'bus/{env}.json', key: listen.port, value: '{internal}' }
      - type: compose-env
        file: compose.yaml
        service: bridge
        var: BUS_URL
        value: 'ws://bus:{internal}/events'
        env: production
`;

/** The files {@link PROJECT_PORTS} writes to, out of sync, with comments and odd formatting to keep. */
export const PROJECT_FILES: Record<string, string> = {
  'ports.yaml': PROJECT_PORTS,
  'api/production.yaml':
    '# api (production)\nserver:\n  host: 0.0.0.0   # all interfaces\n  port: 1 # synced\nlist:\n- a\n- b\n',
  'api/development.yaml': 'server:\n  port: "1"\n',
  'bus/production.json': '{\n    "listen": {\n        "port": 1\n    },\n    "name": "bus"\n}\n',
  'bus/development.json': '{\n\t"listen": {\n\t\t"port": 1\n\t}\n}',
  'env/production.env': '# production\nexport API_PORT=1 # api\nPGPORT="1"\n\nOTHER=x\n',
  'env/development.env': 'OTHER=y\n',
  'compose.yaml': `# compose
services:
  postgres:
    image: postgres:17
    ports:
      - 5432 # container only
  api:
    ports: ["1:3000"]
  bridge:
    environment:
      - NODE_ENV=production
      - BUS_URL=ws://bus:1/events
`,
};

/** A temporary project directory. */
export interface TempProject {
  dir: string;
  /** Absolute path of a file in the project. */
  path(file: string): string;
  read(file: string): string;
  write(file: string, text: string): void;
  /** Every file's text, by relative path (lock directories skipped). */
  snapshot(): Record<string, string>;
  cleanup(): void;
}

/**
 * Creates a temporary project with the given files (default: {@link PROJECT_FILES}).
 *
 * @example
 * const p = makeProject(); try { ... } finally { p.cleanup(); }
 */
export function makeProject(files: Record<string, string> = PROJECT_FILES): TempProject {
  const dir = mkdtempSync(join(tmpdir(), 'phare-ports-'));
  const path = (f: string) => join(dir, f);
  const write = (f: string, text: string) => {
    mkdirSync(dirname(path(f)), { recursive: true });
    writeFileSync(path(f), text);
  };
  for (const [f, text] of Object.entries(files)) write(f, text);
  const snapshot = () => {
    const out: Record<string, string> = {};
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (e.endsWith('.lock')) continue;
        if (statSync(p).isDirectory()) walk(p);
        else out[relative(dir, p)] = readFileSync(p, 'utf8');
      }
    };
    walk(dir);
    return out;
  };
  return {
    dir,
    path,
    read: (f) => readFileSync(path(f), 'utf8'),
    write,
    snapshot,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
