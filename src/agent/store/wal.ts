/**
 * A look at a SQLite write-ahead log before SQLite opens it (https://www.sqlite.org/fileformat2.html#walformat).
 *
 * SQLite's recovery keeps the frames of the log up to the last valid commit and silently drops the rest.
 * That is right for what a crash leaves (frames of a commit that never finished, stale frames of an older
 * log generation), but it also drops, without a word, a log whose header was overwritten (every change since
 * the last checkpoint) or a committed frame damaged afterwards. This module tells those apart where the
 * file allows it.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** What {@link inspectWal} found. */
export type WalReport =
  | { state: 'absent' | 'ok' }
  /**
   * The header is not a valid WAL header: SQLite ignores the whole log. `zeroed`: it is all zero bytes, what
   * a file system can leave after a power loss (the log was then not durable anyway); anything else is not
   * something SQLite or a crash writes.
   */
  | { state: 'bad-header'; size: number; zeroed: boolean }
  /**
   * After the valid frames, a frame of the current generation (same salts) fails its checksum: either a
   * committed frame was damaged, or a kill -9 fell between the two writes of a frame of a commit that was
   * never acknowledged — the file cannot say which.
   */
  | { state: 'bad-frame'; offset: number; validCommits: number };

const HEADER = 32;
const FRAME_HEADER = 24;

/**
 * Inspects the WAL file `path`. Reads it whole (it is bounded by SQLite's checkpoints, a few MiB).
 *
 * @example
 * const r = inspectWal('.phare/data/phare.db-wal');
 * if (r.state === 'bad-header') refuse();
 */
export function inspectWal(path: string): WalReport {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return { state: 'absent' };
  }
  if (size === 0) return { state: 'absent' };
  const buf = Buffer.alloc(size);
  const fd = openSync(path, 'r');
  try {
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  const badHeader = (): WalReport => ({
    state: 'bad-header',
    size,
    zeroed: buf.subarray(0, Math.min(size, HEADER)).every((b) => b === 0),
  });
  if (size < HEADER) return badHeader();
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return badHeader();
  const bigEndian = (magic & 1) === 1;
  const pageSize = buf.readUInt32BE(8);
  if (
    buf.readUInt32BE(4) !== 3007000 ||
    pageSize < 512 ||
    pageSize > 65536 ||
    (pageSize & (pageSize - 1)) !== 0
  )
    return badHeader();
  let [s0, s1] = checksum(buf, 0, 24, 0, 0, bigEndian);
  if (s0 !== buf.readUInt32BE(24) || s1 !== buf.readUInt32BE(28)) return badHeader();
  const salt1 = buf.readUInt32BE(16);
  const salt2 = buf.readUInt32BE(20);
  let validCommits = 0;
  for (let off = HEADER; off + FRAME_HEADER + pageSize <= size; off += FRAME_HEADER + pageSize) {
    if (buf.readUInt32BE(off + 8) !== salt1 || buf.readUInt32BE(off + 12) !== salt2) break; // older generation
    [s0, s1] = checksum(buf, off, 8, s0, s1, bigEndian);
    [s0, s1] = checksum(buf, off + FRAME_HEADER, pageSize, s0, s1, bigEndian);
    if (s0 !== buf.readUInt32BE(off + 16) || s1 !== buf.readUInt32BE(off + 20))
      return { state: 'bad-frame', offset: off, validCommits };
    if (buf.readUInt32BE(off + 4) !== 0) validCommits++;
  }
  return { state: 'ok' };
}

/** SQLite's WAL checksum over `len` bytes (a multiple of 8) from `off`, continuing from (s0, s1). */
function checksum(
  buf: Buffer,
  off: number,
  len: number,
  s0: number,
  s1: number,
  bigEndian: boolean,
): [number, number] {
  let a = s0;
  let b = s1;
  for (let i = off; i < off + len; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    a = (a + x0 + b) >>> 0;
    b = (b + x1 + a) >>> 0;
  }
  return [a, b];
}
