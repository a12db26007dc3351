/**
 * /proc/kpageflags tables: one u64 little-endian word of KPF_* bits per
 * pfn, indexed by pfn (byte offset pfn * 8), as the kernel serves them
 * (fs/proc/page.c kpageflags_read) and as `page-types -F FILE` reads a
 * saved copy. No header: a copy taken with `dd` or `cat` is a valid table.
 *
 * Bit numbers: include/uapi/linux/kernel-page-flags.h; bit 23 was
 * KPF_BALLOON (3.18–5.0) before it became KPF_OFFLINE (kernel
 * ca215086b14b, "mm: convert PG_balloon to PG_offline"). Bits 32 and up are
 * the "kernel hacking" raw flags (KPF_RESERVED 32, KPF_PRIVATE 35, ...).
 *
 * Reads are windowed and positional into the caller's reused typed arrays:
 * the low 32 bits (what classification needs) and the high 32 bits.
 */
import type { FileHandle } from 'node:fs/promises';
import { DumpError, InputError, ioError } from '../../core/errors.js';
import { openRegular } from '../../io/source.js';
import { AtomicFileSink } from '../../io/sink.js';

export const KPF_BITS = {
  LOCKED: 0,
  ERROR: 1,
  REFERENCED: 2,
  UPTODATE: 3,
  DIRTY: 4,
  LRU: 5,
  ACTIVE: 6,
  SLAB: 7,
  WRITEBACK: 8,
  RECLAIM: 9,
  BUDDY: 10,
  MMAP: 11,
  ANON: 12,
  SWAPCACHE: 13,
  SWAPBACKED: 14,
  COMPOUND_HEAD: 15,
  COMPOUND_TAIL: 16,
  HUGE: 17,
  UNEVICTABLE: 18,
  HWPOISON: 19,
  NOPAGE: 20,
  KSM: 21,
  THP: 22,
  /** KPF_OFFLINE (5.1+), KPF_BALLOON (3.18–5.0). */
  OFFLINE: 23,
  ZERO_PAGE: 24,
  IDLE: 25,
  PGTABLE: 26,
  RESERVED: 32,
  MLOCKED: 33,
  MAPPEDTODISK: 34,
  PRIVATE: 35,
  PRIVATE_2: 36,
  OWNER_PRIVATE: 37,
  ARCH: 38,
  UNCACHED: 39,
  SOFTDIRTY: 40,
  ARCH_2: 41,
} as const;

export const KPF_ENTRY_SIZE = 8;
/** Largest table accepted: 2^40 pfns (4 EiB of 4 KiB pages is far beyond any guest). */
export const KPF_MAX_ENTRIES = 2 ** 40;

/** A saved kpageflags table opened for windowed reads. */
export class KpageflagsTable {
  readonly file: string;
  /** Number of pfns the table covers (file size / 8). */
  readonly entries: number;
  private fh: FileHandle | undefined;
  private buf: Uint8Array;

  private constructor(file: string, fh: FileHandle, entries: number) {
    this.file = file;
    this.fh = fh;
    this.entries = entries;
    this.buf = new Uint8Array(0);
  }

  /**
   * Open a saved table: a regular file only (a FIFO, /dev/zero or a
   * directory is refused at once, never read); its size must be whole
   * entries. Problems are InputError (a side input: exit 2).
   */
  static async open(file: string): Promise<KpageflagsTable> {
    let opened: { fh: FileHandle; size: number };
    try {
      opened = await openRegular(file, file, (d) => new InputError(`kpageflags table: ${d}`, { file }));
    } catch (err) {
      if (err instanceof DumpError && err.code === 'IO') throw new InputError(`cannot open kpageflags table: ${err.detail}`, { file, cause: err });
      throw err;
    }
    const { fh, size } = opened;
    try {
      if (size % KPF_ENTRY_SIZE !== 0) {
        throw new InputError(`kpageflags table is ${size} bytes, not a whole number of 8-byte entries`, { file });
      }
      const entries = size / KPF_ENTRY_SIZE;
      if (entries > KPF_MAX_ENTRIES) throw new InputError(`kpageflags table has ${entries} entries, above ${KPF_MAX_ENTRIES}`, { file });
      return new KpageflagsTable(file, fh, entries);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /**
   * Read the words of pfns [start, start+count) into lo[at…] and hi[at…].
   * Returns how many pfns the table has data for (pfns at or beyond
   * `entries` are not filled).
   */
  async read(start: number, count: number, lo: Uint32Array, hi: Uint32Array, at = 0): Promise<number> {
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(count) || count < 0) {
      throw new RangeError(`bad kpageflags window ${start}+${count}`);
    }
    if (at + count > lo.length || at + count > hi.length) throw new RangeError('kpageflags window larger than the arrays');
    const n = Math.max(0, Math.min(count, this.entries - start));
    if (n === 0) return 0;
    const bytes = n * KPF_ENTRY_SIZE;
    if (this.buf.length < bytes) this.buf = new Uint8Array(Math.max(bytes, 64 * 1024));
    const fh = this.handle();
    let got = 0;
    try {
      while (got < bytes) {
        const { bytesRead } = await fh.read(this.buf, got, bytes - got, start * KPF_ENTRY_SIZE + got);
        if (bytesRead === 0) throw new InputError(`kpageflags table ends early at byte ${start * KPF_ENTRY_SIZE + got}`, { file: this.file });
        got += bytesRead;
      }
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw ioError(err, this.file, 'cannot read kpageflags table');
    }
    decodeWords(this.buf, n, lo, hi, at);
    return n;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  private handle(): FileHandle {
    if (!this.fh) throw new Error('kpageflags table is closed');
    return this.fh;
  }
}

/** Split n little-endian u64 words of `bytes` into lo/hi halves. */
export function decodeWords(bytes: Uint8Array, n: number, lo: Uint32Array, hi: Uint32Array, at = 0): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n * KPF_ENTRY_SIZE);
  for (let i = 0; i < n; i++) {
    lo[at + i] = dv.getUint32(i * 8, true);
    hi[at + i] = dv.getUint32(i * 8 + 4, true);
  }
}

/** Interleave lo/hi halves into n little-endian u64 words. */
export function encodeWords(lo: Uint32Array, hi: Uint32Array, n: number, out: Uint8Array, at = 0): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < n; i++) {
    dv.setUint32(i * 8, lo[at + i]!, true);
    dv.setUint32(i * 8 + 4, hi[at + i]!, true);
  }
}

/**
 * Writes a table window by window, in any order, through an atomic sink;
 * 4 KiB blocks that are all zero stay sparse holes.
 */
export class KpageflagsTableWriter {
  private readonly sink: AtomicFileSink;
  readonly entries: number;
  private buf = new Uint8Array(0);

  private constructor(sink: AtomicFileSink, entries: number) {
    this.sink = sink;
    this.entries = entries;
  }

  static async create(file: string, entries: number): Promise<KpageflagsTableWriter> {
    if (!Number.isSafeInteger(entries) || entries < 0 || entries > KPF_MAX_ENTRIES) throw new RangeError(`bad kpageflags entry count ${entries}`);
    return new KpageflagsTableWriter(await AtomicFileSink.create(file), entries);
  }

  get name(): string {
    return this.sink.name;
  }

  async write(start: number, count: number, lo: Uint32Array, hi: Uint32Array, at = 0): Promise<void> {
    if (start < 0 || start + count > this.entries) throw new RangeError(`kpageflags window ${start}+${count} outside the table`);
    const bytes = count * KPF_ENTRY_SIZE;
    if (this.buf.length < bytes) this.buf = new Uint8Array(bytes);
    encodeWords(lo, hi, count, this.buf, at);
    // Skip all-zero 4 KiB blocks (512 entries) aligned to the file; write the rest in as few calls as possible.
    const PER_BLOCK = 4096 / KPF_ENTRY_SIZE;
    let i = 0;
    let spanStart = -1;
    while (i < count) {
      const blockEnd = Math.min(count, (Math.floor((start + i) / PER_BLOCK) + 1) * PER_BLOCK - start);
      let zero = true;
      for (let k = at + i; k < at + blockEnd; k++) {
        if ((lo[k]! | hi[k]!) !== 0) {
          zero = false;
          break;
        }
      }
      if (!zero && spanStart < 0) spanStart = i;
      if (zero && spanStart >= 0) {
        await this.sink.write(this.buf.subarray(spanStart * KPF_ENTRY_SIZE, i * KPF_ENTRY_SIZE), (start + spanStart) * KPF_ENTRY_SIZE);
        spanStart = -1;
      }
      i = blockEnd;
    }
    if (spanStart >= 0) await this.sink.write(this.buf.subarray(spanStart * KPF_ENTRY_SIZE, count * KPF_ENTRY_SIZE), (start + spanStart) * KPF_ENTRY_SIZE);
  }

  async commit(): Promise<void> {
    await this.sink.setLength(this.entries * KPF_ENTRY_SIZE);
    await this.sink.commit();
  }

  async abort(): Promise<void> {
    await this.sink.abort();
  }
}
