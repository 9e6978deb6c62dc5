import { readFileSync } from 'node:fs';

let cached: string | undefined;

/**
 * Phare's own version (package.json's), as `phare --version` prints it and the agent reports it in
 * `/v1/agent/self` (`DebugConfig.PhareVersion`; `Config.Version` is the Consul version whose API it speaks).
 *
 * @example
 * phareVersion(); // '0.1.0'
 */
export function phareVersion(): string {
  // one level above src/api and dist/api alike
  cached ??= (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
  return cached;
}
