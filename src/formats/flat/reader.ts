/**
 * A flattened-format file (makedumpfile -F) read in place, as the plain
 * file makedumpfile -R would rebuild: a ByteSource whose positions are
 * those of the rebuilt file, like libkdumpfile's flatmap.c. Any dump
 * reader (ELF, kdump) then runs on top.
 *
 * Opening scans the record headers once, skipping the data. Records are
 * kept as runs: consecutive records that continue each other in both files
 * (makedumpfile writes long series of equal-sized cache flushes) share one
 * entry, so the map stays small whatever the file size. Runs are then
 * sorted by plain offset; where records overlap the later one wins (it
 * would overwrite the earlier one in the rebuilt file); bytes no record
 * covers read as zeros, as in the sparse rebuilt file.
 */
import { DumpError, hex, inContext } from '../../core/errors.js';
import { readExact, type ByteSource } from '../../io/source.js';
import type { StreamReader } from '../../io/spill.js';
import { FLAT_HEADER_SIZE, FLAT_RECORD_HEADER_SIZE, FLAT_SIGNATURE, FLAT_SIGNATURE_SIZE, FLAT_TYPE } from './writer.js';

/** Most runs (discontiguous series of records) accepted: the map then takes about 52 MiB. */
export const MAX_FLAT_RUNS = 1 << 20;
/** Most records accepted (makedumpfile's 64 KiB records: 16 TiB of dump). */
export const MAX_FLAT_RECORDS = 1 << 28;

export interface FlatSourceOptions {
  maxRuns?: number;
  maxRecords?: number;
}
/** Largest rebuilt file accepted (2^52 bytes). */
export const MAX_FLAT_PLAIN_SIZE = 2 ** 52;
/** Bytes read per header lookup (small records are then found without more reads). */
const SCAN_WINDOW = 4096;

/** True if the first bytes are a flattened-format header. Never throws. */
export function probeFlat(head: Uint8Array): boolean {
  if (head.length < FLAT_SIGNATURE_SIZE + 8) return false;
  for (let i = 0; i < FLAT_SIGNATURE.length; i++) if (head[i] !== FLAT_SIGNATURE.charCodeAt(i)) return false;
  // makedumpfile compares with strcmp: a NUL must end the signature.
  return head[FLAT_SIGNATURE.length] === 0;
}

/** Growable typed columns of the run table. */
class Runs {
  plain: Float64Array = new Float64Array(64);
  flat: Float64Array = new Float64Array(64);
  /** Size of each record of the run except possibly the last. */
  rec: Float64Array = new Float64Array(64);
  len: Float64Array = new Float64Array(64);
  n = 0;

  push(plain: number, flat: number, size: number): void {
    if (this.n === this.plain.length) {
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.plain = grow(this.plain);
      this.flat = grow(this.flat);
      this.rec = grow(this.rec);
      this.len = grow(this.len);
    }
    this.plain[this.n] = plain;
    this.flat[this.n] = flat;
    this.rec[this.n] = size;
    this.len[this.n] = size;
    this.n++;
  }
}

export class FlatSource implements ByteSource {
  readonly name: string;
  /** Size of the rebuilt plain file. */
  readonly size: number;
  /** Data records in the file. */
  readonly records: number;
  /** Bytes of record data: what the file really holds of the rebuilt one. */
  readonly storedBytes: number;
  // Runs, in stream order.
  private readonly runs: Runs;
  // Extents of the plain file, sorted, disjoint: [start[i], end[i]) comes from run run[i].
  private readonly eStart: Float64Array;
  private readonly eEnd: Float64Array;
  private readonly eRun: Int32Array;

  private constructor(inner: ByteSource, runs: Runs, records: number, size: number, storedBytes: number) {
    this.inner = inner;
    this.storedBytes = storedBytes;
    this.name = inner.name;
    this.runs = runs;
    this.records = records;
    this.size = size;
    const ext = paint(runs);
    this.eStart = ext.start;
    this.eEnd = ext.end;
    this.eRun = ext.run;
  }

  private readonly inner: ByteSource;

  /** Number of runs the records collapsed into (for `info`). */
  get runCount(): number {
    return this.runs.n;
  }

  /** Scan `inner` (a flattened file) and map it. */
  static async open(inner: ByteSource, opts: FlatSourceOptions = {}): Promise<FlatSource> {
    const file = inner.name;
    const maxRuns = opts.maxRuns ?? MAX_FLAT_RUNS;
    const maxRecords = opts.maxRecords ?? MAX_FLAT_RECORDS;
    if (inner.size < FLAT_HEADER_SIZE) {
      throw new DumpError('DUMP_TRUNCATED', `flattened-format header needs ${FLAT_HEADER_SIZE} bytes, the file has ${inner.size}`, { file, offset: 0 });
    }
    const head = new Uint8Array(FLAT_SIGNATURE_SIZE + 16);
    await readExact(inner, head, 0, head.length, 0, 'flattened-format header');
    if (!probeFlat(head)) throw new DumpError('DUMP_UNSUPPORTED', 'not a flattened-format file (no "makedumpfile" signature)', { file, offset: 0 });
    const hv = new DataView(head.buffer);
    const typeHi = hv.getInt32(FLAT_SIGNATURE_SIZE, false);
    const typeLo = hv.getUint32(FLAT_SIGNATURE_SIZE + 4, false);
    if (typeHi !== 0 || typeLo !== FLAT_TYPE) {
      throw new DumpError('DUMP_UNSUPPORTED', `flattened-format type ${typeHi === 0 ? typeLo : `0x${(typeHi >>> 0).toString(16)}${typeLo.toString(16).padStart(8, '0')}`} is not 1`, {
        file,
        offset: FLAT_SIGNATURE_SIZE,
      });
    }

    const runs = new Runs();
    const win = new Uint8Array(SCAN_WINDOW);
    const wv = new DataView(win.buffer);
    let winPos = -1;
    let winLen = 0;
    let pos = FLAT_HEADER_SIZE;
    let records = 0;
    let plainSize = 0;
    let stored = 0;
    for (;;) {
      if (pos + FLAT_RECORD_HEADER_SIZE > inner.size) {
        throw new DumpError('DUMP_TRUNCATED', `flattened file ends at ${hex(inner.size)} without its end marker`, { file, offset: pos });
      }
      if (winPos < 0 || pos < winPos || pos + FLAT_RECORD_HEADER_SIZE > winPos + winLen) {
        winLen = Math.min(SCAN_WINDOW, inner.size - pos);
        await readExact(inner, win, 0, winLen, pos, 'flattened record header');
        winPos = pos;
      }
      const ctx = { file, offset: pos };
      const rec = recordHeader(wv, pos - winPos, ctx);
      if (!rec) break;
      const { offset, size } = rec;
      const dataAt = pos + FLAT_RECORD_HEADER_SIZE;
      if (size > inner.size - dataAt) {
        throw new DumpError('DUMP_TRUNCATED', `flattened record of ${size} bytes runs past the end of the file (${hex(inner.size)})`, ctx);
      }
      if (offset + size > MAX_FLAT_PLAIN_SIZE) {
        throw new DumpError('DUMP_LIMIT_EXCEEDED', `flattened record ends at ${hex(offset + size)}, beyond the limit of ${hex(MAX_FLAT_PLAIN_SIZE)}`, ctx);
      }
      if (records >= maxRecords) {
        throw new DumpError('DUMP_LIMIT_EXCEEDED', `flattened file has more than ${maxRecords} records`, ctx);
      }
      records++;
      stored += size;
      plainSize = Math.max(plainSize, offset + size);
      // Continue the last run if this record follows it in both files and
      // the run's records so far are all of one size.
      const r = runs.n - 1;
      if (
        r >= 0 &&
        runs.plain[r]! + runs.len[r]! === offset &&
        runs.len[r]! % runs.rec[r]! === 0 &&
        size <= runs.rec[r]! &&
        runFlatEnd(runs, r) === pos
      ) {
        runs.len[r] = runs.len[r]! + size;
      } else {
        if (runs.n >= maxRuns) {
          throw new DumpError('DUMP_LIMIT_EXCEEDED', `flattened file has more than ${maxRuns} discontiguous record runs`, ctx);
        }
        runs.push(offset, dataAt, size);
      }
      pos = dataAt + size;
    }
    return new FlatSource(inner, runs, records, plainSize, Math.min(stored, inner.storedBytes ?? inner.size));
  }

  async read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    if (position >= this.size || length <= 0) return 0;
    const total = Math.min(length, this.size - position);
    const end = position + total;
    const count = this.eStart.length;
    let p = position;
    let i = this.findExtent(p);
    while (p < end) {
      const dst = bufOffset + (p - position);
      if (i >= 0 && p < this.eEnd[i]!) {
        const eEnd = Math.min(end, this.eEnd[i]!);
        await this.copyRun(this.eRun[i]!, p, eEnd, buf, dst);
        p = eEnd;
      } else {
        // No record covers these bytes: zeros up to the next extent.
        const z = Math.min(end, i + 1 < count ? this.eStart[i + 1]! : end);
        buf.fill(0, dst, dst + (z - p));
        p = z;
      }
      if (i + 1 < count && p >= this.eStart[i + 1]!) i++;
    }
    return total;
  }

  /** Plain bytes [from, to) of run r into buf at dst; a run's records are 16 header bytes apart. */
  private async copyRun(r: number, from: number, to: number, buf: Uint8Array, dst: number): Promise<void> {
    const base = this.runs.plain[r]!;
    const rec = this.runs.rec[r]!;
    const flat = this.runs.flat[r]!;
    let p = from;
    while (p < to) {
      const rel = p - base;
      const k = Math.floor(rel / rec);
      const n = Math.min(to, base + (k + 1) * rec) - p;
      await readExact(this.inner, buf, dst + (p - from), n, flat + rel + k * FLAT_RECORD_HEADER_SIZE, `flattened data for offset ${hex(p)}`);
      p += n;
    }
  }

  /** Index of the last extent starting at or before x, or -1. */
  private findExtent(x: number): number {
    let lo = 0;
    let hi = this.eStart.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.eStart[mid]! <= x) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Flat-file position just past run r's data. */
function runFlatEnd(runs: Runs, r: number): number {
  const len = runs.len[r]!;
  const rec = runs.rec[r]!;
  const k = Math.ceil(len / rec); // records in the run
  return runs.flat[r]! + len + (k - 1) * FLAT_RECORD_HEADER_SIZE;
}

function describeI64(hi: number, lo: number): string {
  return `0x${(hi >>> 0).toString(16)}${lo.toString(16).padStart(8, '0')}`;
}

/**
 * Disjoint extents of the plain file, each taken from the latest run
 * covering it. Fast path when no runs overlap; else a sweep with a
 * max-heap of active runs keyed by their stream order.
 */
function paint(runs: Runs): { start: Float64Array; end: Float64Array; run: Int32Array } {
  const n = runs.n;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => runs.plain[a]! - runs.plain[b]! || a - b);
  let overlap = false;
  for (let k = 1; k < n; k++) {
    const a = order[k - 1]!;
    const b = order[k]!;
    if (runs.plain[b]! < runs.plain[a]! + runs.len[a]!) {
      overlap = true;
      break;
    }
  }
  // At most one extent per run without overlaps, two per run with them.
  const cap = overlap ? 2 * n : n;
  const starts = new Float64Array(cap);
  const ends = new Float64Array(cap);
  const ids = new Int32Array(cap);
  let count = 0;
  const push = (s: number, e: number, r: number): void => {
    const last = count - 1;
    if (last >= 0 && ids[last] === r && ends[last] === s) {
      ends[last] = e;
      return;
    }
    starts[count] = s;
    ends[count] = e;
    ids[count] = r;
    count++;
  };
  if (!overlap) {
    for (let k = 0; k < n; k++) {
      const r = order[k]!;
      push(runs.plain[r]!, runs.plain[r]! + runs.len[r]!, r);
    }
  } else {
    const bounds = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      bounds[2 * i] = runs.plain[i]!;
      bounds[2 * i + 1] = runs.plain[i]! + runs.len[i]!;
    }
    bounds.sort();
    const heap: number[] = [];
    const hpush = (r: number): void => {
      heap.push(r);
      let i = heap.length - 1;
      while (i > 0) {
        const par = (i - 1) >> 1;
        if (heap[par]! >= heap[i]!) break;
        [heap[i], heap[par]] = [heap[par]!, heap[i]!];
        i = par;
      }
    };
    const hpop = (): void => {
      const last = heap.pop()!;
      if (heap.length === 0) return;
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const rr = l + 1;
        let m = i;
        if (l < heap.length && heap[l]! > heap[m]!) m = l;
        if (rr < heap.length && heap[rr]! > heap[m]!) m = rr;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    };
    let next = 0;
    for (let b = 0; b < bounds.length - 1; b++) {
      const x = bounds[b]!;
      const y = bounds[b + 1]!;
      if (y <= x) continue;
      while (next < n && runs.plain[order[next]!]! <= x) hpush(order[next++]!);
      // Drop finished runs that have surfaced; the newest live run wins.
      while (heap.length && runs.plain[heap[0]!]! + runs.len[heap[0]!]! <= x) hpop();
      const top = heap[0];
      if (top === undefined) continue;
      push(x, y, top);
    }
  }
  return { start: starts.slice(0, count), end: ends.slice(0, count), run: ids.slice(0, count) };
}

/** Where a flattened stream's records go: positional writes of the rebuilt file. */
export interface FlatTarget {
  write(data: Uint8Array, position: number): Promise<void>;
}

export interface FlatStreamResult {
  /** Data records read. */
  records: number;
  /** Size of the rebuilt file (end of the furthest record). */
  size: number;
  /** Bytes of record data. */
  dataBytes: number;
  /** Records that went back to an offset below the end of an earlier one. */
  backwards: number;
}

/** Bytes of record data handed to the target at once. */
const STREAM_PIECE = 1 << 20;

/**
 * Rebuild a flattened stream (makedumpfile -F, dumpsieve -F, QEMU's
 * kdump output) read once, in order, from `input`: every record's data
 * goes to `out` at its offset, as makedumpfile -R does
 * (rearrange_dumpdata), with the checks FlatSource makes on files. Error
 * offsets are stream positions. A stream that ends before its end marker
 * is cut short (DUMP_TRUNCATED).
 */
export async function rebuildFlatStream(input: StreamReader, out: FlatTarget, opts: FlatSourceOptions = {}): Promise<FlatStreamResult> {
  const file = input.name;
  const maxRecords = opts.maxRecords ?? MAX_FLAT_RECORDS;
  const head = await input.read(FLAT_HEADER_SIZE);
  if (head.length < FLAT_HEADER_SIZE) {
    throw new DumpError('DUMP_TRUNCATED', `flattened-format header needs ${FLAT_HEADER_SIZE} bytes, the stream ends after ${head.length}`, { file, offset: 0 });
  }
  if (!probeFlat(head)) throw new DumpError('DUMP_UNSUPPORTED', 'not a flattened-format stream (no "makedumpfile" signature)', { file, offset: 0 });
  const hv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const typeHi = hv.getInt32(FLAT_SIGNATURE_SIZE, false);
  const typeLo = hv.getUint32(FLAT_SIGNATURE_SIZE + 4, false);
  if (typeHi !== 0 || typeLo !== FLAT_TYPE) {
    throw new DumpError('DUMP_UNSUPPORTED', `flattened-format type ${typeHi === 0 ? typeLo : describeI64(typeHi, typeLo)} is not 1`, { file, offset: FLAT_SIGNATURE_SIZE });
  }
  let records = 0;
  let size = 0;
  let dataBytes = 0;
  let backwards = 0;
  for (;;) {
    const pos = input.position;
    const rh = await input.read(FLAT_RECORD_HEADER_SIZE);
    if (rh.length < FLAT_RECORD_HEADER_SIZE) {
      throw new DumpError('DUMP_TRUNCATED', `flattened stream ends at ${hex(pos + rh.length)} without its end marker (cut short)`, { file, offset: pos });
    }
    const ctx = { file, offset: pos };
    const rec = recordHeader(new DataView(rh.buffer, rh.byteOffset, FLAT_RECORD_HEADER_SIZE), 0, ctx);
    if (!rec) break;
    const { offset, size: len } = rec;
    if (offset + len > MAX_FLAT_PLAIN_SIZE) {
      throw new DumpError('DUMP_LIMIT_EXCEEDED', `flattened record ends at ${hex(offset + len)}, beyond the limit of ${hex(MAX_FLAT_PLAIN_SIZE)}`, ctx);
    }
    if (records >= maxRecords) throw new DumpError('DUMP_LIMIT_EXCEEDED', `flattened stream has more than ${maxRecords} records`, ctx);
    records++;
    if (offset < size) backwards++;
    let done = 0;
    while (done < len) {
      const c = await input.next(Math.min(STREAM_PIECE, len - done));
      if (c.length === 0) {
        throw new DumpError('DUMP_TRUNCATED', `flattened record of ${len} bytes: the stream ends after ${done} of them (cut short)`, ctx);
      }
      await out.write(c, offset + done).catch((err: unknown) => {
        if (err instanceof DumpError && err.code === 'DUMP_LIMIT_EXCEEDED' && offset < size) {
          throw new DumpError('DUMP_LIMIT_EXCEEDED', `flattened record goes back to offset ${hex(offset)}, below ${hex(size)} already spilled: ${err.detail}`, ctx);
        }
        return inContext(err, ctx);
      });
      done += c.length;
    }
    dataBytes += len;
    size = Math.max(size, offset + len);
  }
  return { records, size, dataBytes, backwards };
}

/**
 * The flattened record header at `at` (struct makedumpfile_data_header:
 * big-endian s64 offset, s64 buf_size): the record's place and size in
 * the plain file, or undefined for the end marker {-1, -1}. Negative or
 * zero sizes and any other negative offset are refused, as makedumpfile
 * -R refuses them.
 */
function recordHeader(dv: DataView, at: number, ctx: { file: string; offset: number }): { offset: number; size: number } | undefined {
  const offHi = dv.getInt32(at, false);
  const offLo = dv.getUint32(at + 4, false);
  const sizeHi = dv.getInt32(at + 8, false);
  const sizeLo = dv.getUint32(at + 12, false);
  if (offHi === -1 && offLo === 0xffffffff) {
    if (sizeHi === -1 && sizeLo === 0xffffffff) return undefined;
    throw new DumpError('DUMP_CORRUPT', 'flattened record has offset -1 but is not the end marker {-1, -1}', ctx);
  }
  if (offHi < 0) throw new DumpError('DUMP_CORRUPT', `flattened record has a negative offset (${describeI64(offHi, offLo)})`, ctx);
  if (sizeHi < 0) throw new DumpError('DUMP_CORRUPT', `flattened record has a negative size (${describeI64(sizeHi, sizeLo)})`, ctx);
  const size = sizeHi * 0x1_0000_0000 + sizeLo;
  if (size === 0) throw new DumpError('DUMP_CORRUPT', 'flattened record has size 0 (makedumpfile -R stops there)', ctx);
  return { offset: offHi * 0x1_0000_0000 + offLo, size };
}
