/**
 * Outside clients for the interop tests: where their private installs live and how a test reports one
 * that is missing. Locally a missing client skips its test with the command that installs it; in CI
 * (`CI=true`) it fails, so a green run always ran every client.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The cache `scripts/system-deps.sh` unpacks private packages into (same rule as the script). */
export function phareCacheDir(): string {
  return (
    process.env['PHARE_CACHE_DIR'] ||
    join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'phare')
  );
}

/** `node:test` options for a test that needs an outside client: skip locally, run (and fail) in CI. */
export function needs(missing: string | undefined): { skip: string | false } {
  return { skip: missing && process.env['CI'] !== 'true' ? `skipped: ${missing}` : false };
}

/** Fails the running test when its client is missing (the CI path of {@link needs}). */
export function requirePresent(missing: string | undefined): void {
  if (missing) throw new Error(`outside client missing (run scripts/system-deps.sh test): ${missing}`);
}
