/**
 * Tests that need a real outside component (PostgreSQL, Redis, Chromium, python-consul, dig, etcd…) ask
 * here. Away from CI a missing component skips the test with the reason and the install command; with
 * `CI=true` it is an error that fails the test file: CI must never pass by skipping what it was meant to run.
 * (`npm test` installs the components first: scripts/system-deps.sh.)
 */

/**
 * `false` when nothing is missing; else the `skip` reason for `test(…, { skip })` — or, in CI, throws.
 *
 * @example
 * const skip = dependencySkip(existsSync('/usr/bin/chromium') ? undefined : '/usr/bin/chromium (apt-get install chromium)');
 * test('the UI renders', { skip }, async () => { … });
 */
export function dependencySkip(missing: string | undefined | false): string | false {
  if (!missing) return false;
  if (process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0')
    throw new Error(
      `a real dependency of this test is missing: ${missing}. With CI=true a missing dependency fails; ` +
        'it never skips (npm test installs it: scripts/system-deps.sh).',
    );
  return `skipped, missing: ${missing} (npm test installs it: scripts/system-deps.sh)`;
}
