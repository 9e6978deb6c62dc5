/**
 * `phare ports sync`: writes every target's value.
 *
 * Order matters for safety: take the lock, compute every file's new text in memory, run every rule, and
 * only when nothing is wrong write each file to a temporary file in its own directory (so a rename is
 * atomic) and rename them all into place. Any error before the renames leaves every file untouched.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { PhareError, phareError } from '../api/index.ts';
import { unifiedDiff } from './diff.ts';
import { loadPorts, type PortsModel, type PortsProblem, type ResolvedTarget } from './model.ts';
import { checkRules } from './rules.ts';
import { EDITORS } from './targets/index.ts';

/** One target's value in its file now, and the value ports.yaml gives it. */
export interface TargetState {
  target: ResolvedTarget;
  /** Line of the value in the file, when known. */
  line?: number;
  /** Value found in the file (`undefined`: absent). */
  found: unknown;
  expected: string | number;
  inSync: boolean;
}

/** A file whose text changes. */
export interface FileChange {
  /** Relative to the directory of ports.yaml. */
  file: string;
  path: string;
  /** `null`: the file does not exist yet. */
  before: string | null;
  after: string;
}

/** What a sync would do. */
export interface SyncPlan {
  states: TargetState[];
  changes: FileChange[];
  /** Targets that cannot be written (missing compose service, invalid file, unwritable path, …). */
  problems: PortsProblem[];
}

/**
 * Computes every target's current and desired value and the new text of each file, touching nothing.
 *
 * @example
 * const plan = planSync(model);
 * for (const s of plan.states) if (!s.inSync) console.log(s.target.where);
 */
export function planSync(model: PortsModel): SyncPlan {
  const states: TargetState[] = [];
  const changes: FileChange[] = [];
  const problems: PortsProblem[] = [];
  const byFile = new Map<string, ResolvedTarget[]>();
  for (const t of model.targets) byFile.set(t.path, [...(byFile.get(t.path) ?? []), t]);

  for (const [path, targets] of byFile) {
    const first = targets[0]!;
    const fail = (t: ResolvedTarget, message: string, fix: string, found = 'see message') =>
      problems.push({
        rule: 'target',
        severity: 'error',
        file: t.file,
        key: t.where.slice(t.file.length + 1),
        message,
        expected: 'a writable target',
        found,
        fix,
      });
    let before: string | null;
    try {
      before = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        fail(first, `${first.file}: cannot read (${code})`, 'make the path a readable file', code ?? 'error');
        continue;
      }
      before = null;
      const dir = dirname(path);
      let dirOk = false;
      try {
        dirOk = statSync(dir).isDirectory();
      } catch {}
      if (!dirOk) {
        fail(
          first,
          `${first.file}: directory ${dirname(first.file)} does not exist or is not a directory`,
          'create the directory',
          'missing',
        );
        continue;
      }
      if (targets.some((t) => t.type === 'compose-port' || t.type === 'compose-env')) {
        fail(
          first,
          `${first.file}: compose file does not exist`,
          'create the compose file or fix the path',
          'missing',
        );
        continue;
      }
    }
    let text = before ?? '';
    for (const t of targets) {
      const editor = EDITORS[t.type];
      try {
        const found = editor.read(text, t);
        const inSync = found === t.value;
        if (inSync) {
          states.push({ target: t, found, expected: t.value, inSync });
          continue;
        }
        const line = editor.line?.(text, t);
        const next = editor.write(text, t);
        // Read back what we wrote: an edit that does not land where we think is a bug, not a sync.
        const landed = editor.read(next, t);
        if (landed !== t.value) {
          throw phareError(
            'PHARE_ERR_INVALID_CONFIG',
            `${t.file}: writing ${t.where} did not read back (got ${JSON.stringify(landed)})`,
          );
        }
        // Recorded only once the write is known to work: a target that cannot be written is reported
        // as that, not also as out of sync.
        states.push({ target: t, found, expected: t.value, inSync, ...(line ? { line } : {}) });
        text = next;
      } catch (err) {
        // Editors throw PhareErrors for what they recognise; anything else (e.g. yaml refusing to set a
        // key under a scalar) is still a problem with this target, not a crash.
        const message = err instanceof PhareError ? err.message : `${t.file}: ${(err as Error).message}`;
        fail(t, message, 'fix the file or the target in ports.yaml');
      }
    }
    if (text !== before) changes.push({ file: first.file, path, before, after: text });
  }
  return { states, changes, problems };
}

/** Options of {@link syncPorts}. */
export interface SyncOptions {
  /** Compute and return the diff; write nothing. @default false */
  dryRun?: boolean;
}

/** Result of {@link syncPorts}. */
export interface SyncResult {
  changes: FileChange[];
  /** Unified diff of every change. */
  diff: string;
  /** Files written (empty on a dry run or when everything was in sync). */
  written: string[];
  targets: number;
}

/**
 * Writes every target of `ports.yaml`. Throws PHARE_ERR_INVALID_CONFIG (with `problems` on the error)
 * when anything is wrong, PHARE_ERR_LOCKED when another sync holds the lock, PHARE_ERR_FILE_WRITE when a
 * temporary file cannot be written; in every such case no file has been changed.
 *
 * @example
 * const { written, diff } = await syncPorts('ports.yaml', { dryRun: true });
 */
export async function syncPorts(file: string, options: SyncOptions = {}): Promise<SyncResult> {
  const { model, problems } = loadPorts(file);
  if (!model) throw problemsError(problems);
  let release: (() => Promise<void>) | undefined;
  if (!options.dryRun) {
    try {
      // The lock is ports.yaml.lock beside the file; stale after 10 s so a crashed run does not wedge us.
      release = await lockfile.lock(model.path, { retries: 0, stale: 10_000, realpath: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') {
        throw phareError(
          'PHARE_ERR_LOCKED',
          `${model.name}: another phare ports sync is running (lock ${model.name}.lock); wait for it and retry`,
          { cause: err },
        );
      }
      throw err;
    }
  }
  try {
    // Re-read under the lock: the file may have changed while we waited.
    const locked = options.dryRun ? { model, problems } : loadPorts(model.path);
    if (!locked.model) throw problemsError(locked.problems);
    const plan = planSync(locked.model);
    const errors = [...locked.problems, ...checkRules(locked.model), ...plan.problems].filter(
      (p) => p.severity === 'error',
    );
    if (errors.length > 0) throw problemsError(errors);
    const diff = plan.changes.map((c) => unifiedDiff(c.file, c.before, c.after)).join('');
    if (!options.dryRun) await writeAll(plan.changes);
    return {
      changes: plan.changes,
      diff,
      written: options.dryRun ? [] : plan.changes.map((c) => c.file),
      targets: locked.model.targets.length,
    };
  } finally {
    await release?.();
  }
}

/** A PHARE_ERR_INVALID_CONFIG error carrying the problems (the CLI prints them as a table). */
export function problemsError(problems: PortsProblem[]): PhareError & { problems: PortsProblem[] } {
  const first = problems[0];
  const where = first ? `${first.file}${first.line ? `:${first.line}` : ''}` : '';
  const err = phareError(
    'PHARE_ERR_INVALID_CONFIG',
    `${problems.length} problem(s), nothing written; first: ${where} ${first?.key ?? ''}: ${first?.message ?? ''}`,
  ) as PhareError & { problems: PortsProblem[] };
  err.problems = problems;
  return err;
}

async function writeAll(changes: FileChange[]): Promise<void> {
  const temps: { tmp: string; path: string }[] = [];
  try {
    for (const c of changes) {
      const tmp = join(
        dirname(c.path),
        `.${basename(c.path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
      );
      const mode = await stat(c.path).then(
        (s) => s.mode & 0o7777,
        () => 0o644,
      );
      temps.push({ tmp, path: c.path });
      const fh = await open(tmp, 'wx', mode);
      try {
        await fh.writeFile(c.after);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  } catch (err) {
    await Promise.all(temps.map((t) => unlink(t.tmp).catch(() => {})));
    const e = err as NodeJS.ErrnoException;
    throw phareError(
      'PHARE_ERR_FILE_WRITE',
      `cannot write ${e.path ?? 'a target file'} (${e.code ?? e.message}); nothing was changed`,
      { cause: err },
    );
  }
  for (const t of temps) await rename(t.tmp, t.path);
}
