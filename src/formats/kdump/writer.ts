/**
 * kdump-compressed writer: the file makedumpfile 1.7.2 writes
 * (write_kdump_header, write_kdump_pages_and_bitmap_cyclic), header_version 6.
 *
 *   block 0                       disk_dump_header
 *   block 1                       kdump_sub_header, then the ELF notes copy
 *   (1 + sub_hdr_size) blocks     1st bitmap (RAM), then 2nd bitmap (dumped)
 *   (1 + sub_hdr_size + bitmap_blocks) blocks
 *                                 one page_desc per kept page, pfn order
 *   after the descriptors         page data; with dump level bit 1 the first
 *                                 data page is the all-zero page every zero
 *                                 page's descriptor points at
 *
 * Every size is known from the plan before the first page, so each part is
 * written in place, in large positional writes: bitmaps as their windows
 * arrive, descriptors and data as batches of pages are compressed (in
 * worker threads for large outputs). Memory stays bounded by the batch and
 * flush sizes.
 */
import { availableParallelism } from 'node:os';
import { DumpError } from '../../core/errors.js';
import { SequentialWriter, WatchedSink, writeZeros, type PositionalSink } from '../../io/sink.js';
import type { BitmapWindow, Codec, DumpWriter, OutputPlan, SalvageSummary, WriteSummary } from '../types.js';
import { NT_VMCOREINFO, encodeVmcoreinfoNote, parseNotes } from '../elf/elf.js';
import {
  DH_OFF,
  DISK_DUMP_HEADER_SIZE,
  DUMP_DH,
  KDUMP_HEADER_VERSION,
  KDUMP_SIGNATURE,
  KDUMP_SUB_HEADER_SIZE,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  PAGE_DESC_SIZE,
  encodeDiskDumpHeader,
  encodeSubHeader,
} from './header.js';
import { PageCompressor, checkCodecRuns, codecSpec, type CompressedBatch } from './codecs/index.js';
import { CompressionPool, allocPoolJob, type PoolJob } from './codecs/pool.js';


/** Pages per batch sent to a compression worker (1 MiB of 4 KiB pages). */
const JOB_PAGES = 256;
/**
 * Page data per write, double-buffered. To a file, 256 KiB: small for the
 * capture kernel's memory (docs/kdump.md), and two of them fit a core's L2
 * cache, so the kernel copies them into the page cache from cache
 * (bench/README.md); the file's bytes do not depend on it. To a stream
 * (-F) each write is one flattened record: 512 KiB, which fixes where
 * records begin in the stream's bytes.
 */
const DATA_FLUSH_FILE = 256 << 10;
const DATA_FLUSH_STREAM = 512 << 10;
const DESC_FLUSH = 16384;
const BITMAP_FLUSH = 128 << 10;
/** Below this many kept pages, worker start-up costs more than it saves. */
const POOL_MIN_PAGES = 4096;
const TWO32 = 0x1_0000_0000;

export interface KdumpWriterOptions {
  /**
   * Compression worker threads; 0 compresses on the calling thread.
   * Default: one per available CPU (at most 4, none on a single CPU) for
   * the codecs the codec table marks `threaded` (zlib, zstd), none for the
   * others. The slow codecs gain from workers (2 CPUs: zlib ~85 → ~135
   * MB/s of input); lzo and snappy compress fast enough (~400 MB/s per
   * thread) that batches travelling to workers and back cost more.
   */
  threads?: number;
  /**
   * A bound on the run's resident memory in MiB (`--memory-limit`): with
   * no `threads` given, as many workers as fit in what is left after the
   * main thread's own need (WORKER_BUDGET), none when nothing is left.
   */
  memoryLimitMiB?: number;
  /**
   * Bytes of each of the two bitmap buffers (makedumpfile's
   * `--cyclic-buffer`, there in KiB): bitmaps reach the file in pieces of
   * this size. Default 128 KiB; 4 KiB to 64 MiB. A kdump file's bytes do
   * not depend on it; a -F stream's records do (as makedumpfile's).
   */
  bitmapBuffer?: number;
  /**
   * Workers started ahead by startCompressionWorkers() (while the caller's
   * plan pass runs, so that their start-up overlaps it). The writer owns
   * them from construction: begin() uses them when it would start the same
   * workers, and closes them otherwise (a small output, another codec).
   */
  pool?: CompressionPool | undefined;
}

/** Compression workers a KdumpWriter with these options uses for an output of POOL_MIN_PAGES pages or more. */
export function compressionThreads(codec: Codec, opts: KdumpWriterOptions = {}): number {
  const cpus = availableParallelism();
  const byCpus = codecSpec(codec)?.threaded && cpus > 1 ? Math.min(4, cpus) : 0;
  return opts.threads ?? (opts.memoryLimitMiB === undefined ? byCpus : Math.min(byCpus, workersWithin(opts.memoryLimitMiB, codec)));
}

/**
 * Start the workers a KdumpWriter with these options would start in
 * begin() for an output of up to `maxPages` pages, ahead of it: undefined
 * where it would start none. Hand them on as KdumpWriterOptions.pool.
 */
export function startCompressionWorkers(codec: Codec, pageSize: number, opts: KdumpWriterOptions, maxPages: number): CompressionPool | undefined {
  checkCodecRuns(codec);
  const threads = compressionThreads(codec, opts);
  if (codec === 'none' || threads === 0 || maxPages < POOL_MIN_PAGES) return undefined;
  return CompressionPool.create(codec, pageSize, threads);
}

/**
 * What a run needs, measured with the bundle's launcher on a 2 GiB guest
 * (peak RSS, bench/README.md): the run without its codec's state (what
 * the main thread holds when workers compress), and what each compression
 * worker (its own V8 isolate, with the codec) adds. zstd's WebAssembly
 * costs some 12 MiB wherever it is compiled.
 */
export const WORKER_BUDGET = {
  mainMiB: 58,
  perWorkerMiB: { zlib: 12, zstd: 21, other: 12 },
} as const;

/** Compression workers that fit in `limitMiB` for `codec` (0 when none do). */
export function workersWithin(limitMiB: number, codec: Codec): number {
  const each = codec === 'zlib' || codec === 'zstd' ? WORKER_BUDGET.perWorkerMiB[codec] : WORKER_BUDGET.perWorkerMiB.other;
  return Math.max(0, Math.floor((limitMiB - WORKER_BUDGET.mainMiB) / each));
}

export const MIN_BITMAP_BUFFER = 4 << 10;
export const MAX_BITMAP_BUFFER = 64 << 20;

/** Layout of a kdump-compressed file, all in bytes unless named blocks. */
export interface KdumpLayout {
  blockSize: number;
  subHdrBlocks: number;
  /** Blocks of one bitmap. */
  bitmapBlocksEach: number;
  bitmap1: number;
  bitmap2: number;
  descriptors: number;
  dataStart: number;
}

/** Where everything goes for `maxPfn` pfns, `notesSize` bytes of notes and `keptPages` descriptors. */
export function kdumpLayout(blockSize: number, maxPfn: number, notesSize: number, keptPages: number): KdumpLayout {
  const bs = blockSize;
  const subHdrBlocks = Math.ceil((KDUMP_SUB_HEADER_SIZE + notesSize) / bs);
  const bitmapBlocksEach = Math.ceil(Math.ceil(maxPfn / 8) / bs);
  const bitmap1 = (1 + subHdrBlocks) * bs;
  const bitmap2 = bitmap1 + bitmapBlocksEach * bs;
  const descriptors = bitmap2 + bitmapBlocksEach * bs;
  return { blockSize: bs, subHdrBlocks, bitmapBlocksEach, bitmap1, bitmap2, descriptors, dataStart: descriptors + keptPages * PAGE_DESC_SIZE };
}

/**
 * The notes to copy into the sub-header area and where the VMCOREINFO
 * descriptor lies in them. A VMCOREINFO known to the plan but absent from
 * the notes is appended as a note (readers of header_version >= 4 look for
 * it only there).
 */
export function notesForOutput(
  notes: Uint8Array,
  vmcoreinfoRaw: string | undefined,
  file: string,
): { notes: Uint8Array; vmcoreinfoOffset: number; vmcoreinfoSize: number } {
  const parsed = parseNotes(notes, (off, what) => new DumpError('DUMP_CORRUPT', `ELF notes to copy: ${what}`, { file, offset: off }));
  let end = 0;
  for (const n of parsed) {
    end = Math.min(notes.length, n.descOffset + ((n.descSize + 3) & ~3));
    if (n.name === 'VMCOREINFO' && n.type === NT_VMCOREINFO) {
      return { notes, vmcoreinfoOffset: n.descOffset, vmcoreinfoSize: n.descSize };
    }
  }
  if (vmcoreinfoRaw === undefined) return { notes, vmcoreinfoOffset: -1, vmcoreinfoSize: 0 };
  const note = encodeVmcoreinfoNote(vmcoreinfoRaw);
  const out = new Uint8Array(end + note.length);
  out.set(notes.subarray(0, end), 0);
  out.set(note, end);
  const nameSize = 'VMCOREINFO\0'.length;
  return { notes: out, vmcoreinfoOffset: end + 12 + ((nameSize + 3) & ~3), vmcoreinfoSize: Buffer.byteLength(vmcoreinfoRaw, 'latin1') };
}

interface Job {
  /** Pages in the job, in pfn order. */
  count: number;
  /** 1 where the page is a zero page (shares the zero block), 0 where its data is in `io.input`. */
  zero: Uint8Array;
  /** Pages stored in `io.input`. */
  stored: number;
  io: PoolJob;
  result?: Promise<PoolJob> | undefined;
}

export class KdumpWriter implements DumpWriter {
  private plan: OutputPlan | undefined;
  private layout: KdumpLayout | undefined;
  private readonly flag: number;
  private readonly threads: number;
  /** Workers of the pool, once begin() made one. */
  private workersUsed = 0;
  private pool: CompressionPool | undefined;
  /** Workers handed over at construction (KdumpWriterOptions.pool), until begin() uses or closes them. */
  private early: CompressionPool | undefined;
  /** The main thread's compressor (no worker pool): pages go from the caller's buffer straight to the data writer. */
  private compressor: PageCompressor | undefined;

  // Jobs: the one filling, those compressing, and spares.
  private job: Job | undefined;
  private readonly inflight: Job[] = [];
  private readonly spare: Job[] = [];
  private maxInflight = 1;

  // Page descriptors.
  private readonly desc = new Uint8Array(DESC_FLUSH * PAGE_DESC_SIZE);
  private readonly descView = new DataView(this.desc.buffer);
  private descFill = 0;
  private descWritten = 0;

  // Page data.
  /** Page data, appended after the descriptor table (write-behind). */
  private data: SequentialWriter | undefined;
  private zeroOffset = -1;

  // Bitmaps.
  private readonly bm1: Uint8Array;
  private readonly bm2: Uint8Array;
  private bmFill = 0;
  /** Byte index (within one bitmap) of bm1[0]/bm2[0]. */
  private bmFirst = 0;
  private bitmapNext = 0;
  private dumpedBits = 0;

  // Pages.
  private pagesIn = 0;
  private nextPfn = 0;
  private pagesCompressed = 0;
  private finished = false;
  /** The disk_dump_header block as written (rewritten with the incomplete flag by salvage()). */
  private headerBlock: Uint8Array | undefined;
  private readonly sink: WatchedSink;

  constructor(
    sink: PositionalSink,
    readonly codec: Codec = 'none',
    opts: KdumpWriterOptions = {},
  ) {
    this.sink = new WatchedSink(sink);
    const spec = codecSpec(codec);
    if (!spec && codec !== 'none') throw new RangeError(`KdumpWriter: unknown codec '${codec}'`);
    checkCodecRuns(codec);
    this.flag = spec?.flag ?? 0;
    this.threads = compressionThreads(codec, opts);
    this.early = opts.pool;
    const bm = opts.bitmapBuffer ?? BITMAP_FLUSH;
    if (!Number.isInteger(bm) || bm < MIN_BITMAP_BUFFER || bm > MAX_BITMAP_BUFFER) throw new RangeError(`KdumpWriter: bitmap buffer of ${bm} bytes is not in ${MIN_BITMAP_BUFFER}..${MAX_BITMAP_BUFFER}`);
    this.bm1 = new Uint8Array(bm);
    this.bm2 = new Uint8Array(bm);
  }



  async begin(plan: OutputPlan): Promise<void> {
    if (this.plan) throw new Error('KdumpWriter: begin() called twice');
    const file = this.sink.name;
    const bs = plan.pageSize;
    if (!Number.isInteger(bs) || bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE || (bs & (bs - 1)) !== 0) {
      throw new DumpError('DUMP_UNSUPPORTED', `page size ${bs} cannot be a kdump block size (a power of two in ${MIN_BLOCK_SIZE}..${MAX_BLOCK_SIZE})`, { file });
    }
    if (!Number.isSafeInteger(plan.maxPfn) || plan.maxPfn < 0) throw new RangeError(`KdumpWriter: maxPfn ${plan.maxPfn}`);
    if (!Number.isSafeInteger(plan.keptPages) || plan.keptPages < 0 || plan.keptPages > plan.maxPfn) {
      throw new RangeError(`KdumpWriter: keptPages ${plan.keptPages} with maxPfn ${plan.maxPfn}`);
    }
    if (plan.maxPfn > 0 && Math.ceil(Math.ceil(plan.maxPfn / 8) / bs) * 2 >= TWO32) {
      throw new DumpError('DUMP_LIMIT_EXCEEDED', `max pfn ${plan.maxPfn} needs more bitmap blocks than a u32 holds`, { file });
    }
    this.plan = plan;

    const n = notesForOutput(plan.notes, plan.vmcoreinfo?.raw, file);
    const layout = kdumpLayout(bs, plan.maxPfn, n.notes.length, plan.keptPages);
    this.layout = layout;
    const offsetNote = n.notes.length ? bs + KDUMP_SUB_HEADER_SIZE : 0;

    const header = encodeDiskDumpHeader({
      signature: KDUMP_SIGNATURE,
      headerVersion: KDUMP_HEADER_VERSION,
      utsname: plan.utsname,
      timestampSec: Math.floor(plan.timestamp),
      timestampUsec: 0,
      status: this.flag,
      blockSize: bs,
      subHdrSize: layout.subHdrBlocks,
      bitmapBlocks: 2 * layout.bitmapBlocksEach,
      maxMapnr: Math.min(plan.maxPfn, TWO32 - 1),
      totalRamBlocks: 0,
      deviceBlocks: 0,
      writtenBlocks: 0,
      currentCpu: 0,
      nrCpus: plan.cpus,
    });
    const sub = encodeSubHeader({
      physBase: plan.physBase,
      dumpLevel: plan.dumpLevel,
      split: 0,
      startPfn: 0,
      endPfn: 0,
      offsetVmcoreinfo: offsetNote && n.vmcoreinfoOffset >= 0 ? offsetNote + n.vmcoreinfoOffset : 0,
      sizeVmcoreinfo: offsetNote && n.vmcoreinfoOffset >= 0 ? n.vmcoreinfoSize : 0,
      offsetNote,
      sizeNote: n.notes.length,
      offsetEraseinfo: 0,
      sizeEraseinfo: 0,
      startPfn64: 0,
      endPfn64: 0,
      maxMapnr64: plan.maxPfn,
    });
    // Header block, sub header and notes in one write.
    const head = new Uint8Array(bs + KDUMP_SUB_HEADER_SIZE + n.notes.length);
    head.set(header.subarray(0, DISK_DUMP_HEADER_SIZE), 0);
    head.set(sub, bs);
    head.set(n.notes, bs + KDUMP_SUB_HEADER_SIZE);
    await this.sink.write(head, 0);
    this.headerBlock = head.slice(0, DISK_DUMP_HEADER_SIZE);
    // In a file, reserve the bitmaps and descriptors now: after the disk
    // fills up, salvage() must still be able to write them in place.
    if (this.sink.rewritable) await writeZeros(this.sink, layout.bitmap1, layout.dataStart - layout.bitmap1);

    this.data = new SequentialWriter(this.sink, layout.dataStart, Math.max(this.sink.rewritable ? DATA_FLUSH_FILE : DATA_FLUSH_STREAM, bs));
    // makedumpfile writes the shared zero page first whenever the dump
    // level excludes zero pages (write_kdump_pages_and_bitmap_cyclic).
    if (plan.dumpLevel & 1) await this.appendZeroPage();

    const early = this.early;
    this.early = undefined;
    if (this.flag !== 0 && this.threads > 0 && plan.keptPages >= POOL_MIN_PAGES) {
      const fits = early !== undefined && early.codec === this.codec && early.pageSize === bs && early.threads === this.threads;
      if (!fits) await early?.close();
      this.pool = fits ? early : CompressionPool.create(this.codec, bs, this.threads);
      this.workersUsed = this.threads;
      this.maxInflight = 2 * this.threads;
    } else {
      await early?.close();
      this.compressor = await PageCompressor.create(this.codec, bs);
    }
  }

  async bitmaps(w: BitmapWindow): Promise<void> {
    const plan = this.requirePlan();
    if (w.start !== this.bitmapNext || w.start % 8 !== 0) {
      throw new Error(`KdumpWriter: bitmap window at pfn ${w.start}, expected ${this.bitmapNext}`);
    }
    const end = Math.min(w.start + w.count, plan.maxPfn);
    if (w.count <= 0 || end <= w.start) throw new Error(`KdumpWriter: bitmap window [${w.start}, +${w.count}) outside [0, ${plan.maxPfn})`);
    const bytes = Math.ceil((end - w.start) / 8);
    if (w.ram.length < bytes || w.dumped.length < bytes) throw new Error('KdumpWriter: bitmap window shorter than its count');
    const lastMask = (end - w.start) % 8 === 0 ? 0xff : (1 << ((end - w.start) % 8)) - 1;
    let byteIndex = w.start / 8;
    if (this.bmFill > 0 && this.bmFirst + this.bmFill !== byteIndex) await this.flushBitmaps();
    // Copied as much at a time as the buffers have room for; the window's last byte masked to its count.
    for (let i = 0; i < bytes; ) {
      if (this.bmFill === this.bm1.length) await this.flushBitmaps();
      if (this.bmFill === 0) this.bmFirst = byteIndex;
      const at = this.bmFill;
      const n = Math.min(bytes - i, this.bm1.length - at);
      const bm1 = this.bm1;
      const bm2 = this.bm2;
      bm1.set(w.ram.subarray(i, i + n), at);
      bm2.set(w.dumped.subarray(i, i + n), at);
      if (i + n === bytes) {
        bm1[at + n - 1]! &= lastMask;
        bm2[at + n - 1]! &= lastMask;
      }
      let bits = 0;
      for (let k = at; k < at + n; k++) bits += POPCOUNT8[bm2[k]!]!;
      this.dumpedBits += bits;
      this.bmFill = at + n;
      byteIndex += n;
      i += n;
    }
    this.bitmapNext = end;
  }

  private async flushBitmaps(): Promise<void> {
    if (this.bmFill === 0) return;
    const layout = this.layout!;
    await this.sink.write(this.bm1.subarray(0, this.bmFill), layout.bitmap1 + this.bmFirst);
    await this.sink.write(this.bm2.subarray(0, this.bmFill), layout.bitmap2 + this.bmFirst);
    this.bmFirst += this.bmFill;
    this.bmFill = 0;
  }

  async writePages(pfn: number, count: number, data: Uint8Array, zero?: Uint8Array): Promise<void> {
    const plan = this.requirePlan();
    const ps = plan.pageSize;
    if (pfn < this.nextPfn) throw new Error(`KdumpWriter: pages at pfn ${pfn} arrive after pfn ${this.nextPfn - 1}`);
    if (pfn + count > plan.maxPfn) throw new Error(`KdumpWriter: pages [${pfn}, ${pfn + count}) beyond max pfn ${plan.maxPfn}`);
    if (this.pagesIn + count > plan.keptPages) {
      throw new Error(`KdumpWriter: internal error: ${this.pagesIn + count} pages written, the plan has ${plan.keptPages}`);
    }
    if (data.length < count * ps) throw new Error(`KdumpWriter: ${count} pages need ${count * ps} bytes, have ${data.length}`);
    this.nextPfn = pfn + count;
    this.pagesIn += count;
    if (this.compressor) await this.storePages(this.compressor, count, data, zero);
    else await this.queuePages(count, data, zero);
  }

  /**
   * Without workers: each run of pages goes from the caller's buffer to
   * the data writer (one copy), compressed page by page on the way, then
   * gets its descriptors.
   */
  private async storePages(compressor: PageCompressor, count: number, data: Uint8Array, zero: Uint8Array | undefined): Promise<void> {
    const ps = this.requirePlan().pageSize;
    const out = this.data!;
    const flag = this.flag;
    let i = 0;
    while (i < count) {
      const isZero = zero ? zero[i] === 1 : false;
      let j = i + 1;
      while (j < count && (zero ? zero[j] === 1 : false) === isZero) j++;
      if (isZero) {
        // The shared zero page, made on demand when the dump level did not make it first.
        if (this.zeroOffset < 0) await this.appendZeroPage();
        for (let k = i; k < j; k++) {
          if (this.descFill === DESC_FLUSH) await this.flushDescs();
          this.addDesc(this.zeroOffset, ps, 0);
        }
      } else if (flag === 0) {
        let pos = out.position;
        await out.append(data.subarray(i * ps, j * ps));
        for (let k = i; k < j; k++, pos += ps) {
          if (this.descFill === DESC_FLUSH) await this.flushDescs();
          this.addDesc(pos, ps, 0);
        }
      } else {
        for (let k = i; k < j; k++) {
          const page = data.subarray(k * ps, (k + 1) * ps);
          const c = compressor.page(page);
          const stored = c ?? page;
          const pos = out.position;
          if (stored.length <= out.room) out.put(stored);
          else await out.append(stored);
          if (c) this.pagesCompressed++;
          if (this.descFill === DESC_FLUSH) await this.flushDescs();
          this.addDesc(pos, stored.length, c ? flag : 0);
        }
      }
      i = j;
    }
  }

  /** With workers: pages are copied into batches (transferable buffers) that go to the pool whole. */
  private async queuePages(count: number, data: Uint8Array, zero: Uint8Array | undefined): Promise<void> {
    const ps = this.requirePlan().pageSize;
    let i = 0;
    while (i < count) {
      const job = this.currentJob();
      // A run of pages of one kind, as long as the job has room.
      const room = JOB_PAGES - job.count;
      const isZero = zero ? zero[i] === 1 : false;
      let j = i + 1;
      while (j < count && j - i < room && (zero ? zero[j] === 1 : false) === isZero) j++;
      const n = j - i;
      if (isZero) {
        job.zero.fill(1, job.count, job.count + n);
      } else {
        job.zero.fill(0, job.count, job.count + n);
        job.io.input.set(data.subarray(i * ps, j * ps), job.stored * ps);
        job.stored += n;
      }
      job.count += n;
      i = j;
      if (job.count === JOB_PAGES) await this.dispatch();
    }
  }

  private currentJob(): Job {
    if (this.job) return this.job;
    const spare = this.spare.pop();
    if (spare) {
      spare.count = 0;
      spare.stored = 0;
      spare.result = undefined;
      this.job = spare;
    } else {
      const ps = this.requirePlan().pageSize;
      this.job = { count: 0, stored: 0, zero: new Uint8Array(JOB_PAGES), io: allocPoolJob(JOB_PAGES, ps) };
    }
    return this.job;
  }

  /** Send the filling job to the pool; commit finished jobs in order. */
  private async dispatch(): Promise<void> {
    const job = this.job;
    if (!job || job.count === 0) return;
    this.job = undefined;
    if (job.stored > 0) {
      job.result = this.pool!.run(job.io, job.stored);
    } else {
      job.io.batch.length = 0;
      job.result = Promise.resolve(job.io);
    }
    this.inflight.push(job);
    while (this.inflight.length >= this.maxInflight) await this.commitOldest();
  }

  private async commitOldest(): Promise<void> {
    const job = this.inflight.shift()!;
    const io = await job.result!;
    job.io = io;
    job.result = undefined;
    io.batch.count = job.stored;
    await this.commit(job, io.batch);
    this.spare.push(job);
  }

  /**
   * Data and descriptors of one job, in pfn order. The data is appended
   * first; a full descriptor buffer is written only once the data it
   * points at has reached the sink, so every descriptor in the file points
   * at data that is there (what salvage() relies on).
   */
  private async commit(job: Job, batch: CompressedBatch): Promise<void> {
    const ps = this.requirePlan().pageSize;
    // A zero page made on demand (dump level without bit 1) comes first.
    if (this.zeroOffset < 0 && job.stored < job.count) await this.appendZeroPage();
    let pos = this.data!.position;
    await this.appendData(batch.data.subarray(0, batch.length));
    let k = 0;
    for (let i = 0; i < job.count; i++) {
      if (this.descFill === DESC_FLUSH) await this.flushDescs();
      if (job.zero[i] === 1) {
        this.addDesc(this.zeroOffset, ps, 0);
        continue;
      }
      const size = batch.sizes[k]!;
      const flags = batch.flags[k]!;
      k++;
      this.addDesc(pos, size, flags);
      if (flags !== 0) this.pagesCompressed++;
      pos += size;
    }
    if (this.data!.position !== pos) throw new Error('KdumpWriter: internal error: data position out of step with descriptors');
  }

  /** Add a page descriptor (the data it points at already appended; room checked by the caller). */
  private addDesc(offset: number, size: number, flags: number): void {
    const dv = this.descView;
    const o = this.descFill * PAGE_DESC_SIZE;
    dv.setUint32(o, offset % TWO32, true);
    dv.setUint32(o + 4, Math.floor(offset / TWO32), true);
    dv.setUint32(o + 8, size, true);
    dv.setUint32(o + 12, flags, true);
    dv.setUint32(o + 16, 0, true);
    dv.setUint32(o + 20, 0, true);
    this.descFill++;
  }

  private async flushDescs(): Promise<void> {
    if (this.descFill === 0) return;
    await this.data!.drain();
    const at = this.layout!.descriptors + this.descWritten * PAGE_DESC_SIZE;
    await this.sink.write(this.desc.subarray(0, this.descFill * PAGE_DESC_SIZE), at);
    this.descWritten += this.descFill;
    this.descFill = 0;
  }

  /** Put the shared zero page at the current data position. */
  private async appendZeroPage(): Promise<void> {
    const ps = this.requirePlan().pageSize;
    this.zeroOffset = this.data!.position;
    await this.data!.appendZeros(ps);
  }

  private async appendData(bytes: Uint8Array): Promise<void> {
    await this.data!.append(bytes);
  }

  async end(): Promise<WriteSummary> {
    const plan = this.requirePlan();
    if (this.finished) throw new Error('KdumpWriter: end() called twice');
    this.finished = true;
    try {
      await this.dispatch();
      while (this.inflight.length) await this.commitOldest();
      await this.pool?.close();
      this.pool = undefined;
      if (this.pagesIn !== plan.keptPages) {
        throw new Error(`KdumpWriter: internal error: ${this.pagesIn} pages written, the plan has ${plan.keptPages}`);
      }
      if (this.bitmapNext !== plan.maxPfn) {
        throw new Error(`KdumpWriter: internal error: bitmaps cover pfns [0, ${this.bitmapNext}) of [0, ${plan.maxPfn})`);
      }
      if (this.dumpedBits !== plan.keptPages) {
        throw new Error(`KdumpWriter: internal error: the 2nd bitmap has ${this.dumpedBits} bits set, the plan has ${plan.keptPages} pages`);
      }
      await this.flushBitmaps();
      await this.flushDescs();
      await this.data!.drain();
      const end = this.data!.position;
      const layout = this.layout!;
      await this.sink.setLength(end);
      await this.sink.commit();
      return {
        bytes: end,
        pagesWritten: this.pagesIn,
        dataBytes: end - layout.dataStart,
        pagesCompressed: this.pagesCompressed,
        workers: this.workersUsed,
      };
    } catch (err) {
      await this.pool?.close();
      this.pool = undefined;
      throw err;
    }
  }

  async salvage(): Promise<SalvageSummary | undefined> {
    const plan = this.plan;
    const layout = this.layout;
    const data = this.data;
    const header = this.headerBlock;
    if (this.sink.failure === undefined || !this.sink.rewritable || !plan || !layout || !data || !header) {
      await this.abort();
      return undefined;
    }
    this.finished = true;
    try {
      await this.pool?.close().catch(() => undefined);
      this.pool = undefined;
      await data.settle();
      const durable = data.durable;
      // Descriptors still in memory whose data reached the file: a prefix
      // (data is written in descriptor order; the shared zero page first).
      const dv = this.descView;
      let valid = 0;
      for (; valid < this.descFill; valid++) {
        const o = valid * PAGE_DESC_SIZE;
        const end = dv.getUint32(o, true) + dv.getUint32(o + 4, true) * TWO32 + dv.getUint32(o + 8, true);
        if (end > durable) break;
      }
      if (valid > 0) await this.sink.write(this.desc.subarray(0, valid * PAGE_DESC_SIZE), layout.descriptors + this.descWritten * PAGE_DESC_SIZE);
      this.descWritten += valid;
      this.descFill = 0;
      // The bitmaps of the windows seen; pages past the last descriptor
      // keep theirs zeroed (offset 0, size 0): incomplete, as makedumpfile leaves them.
      await this.flushBitmaps();
      const dh = new DataView(header.buffer, header.byteOffset, header.byteLength);
      dh.setUint32(DH_OFF.status, dh.getUint32(DH_OFF.status, true) | DUMP_DH.COMPRESSED_INCOMPLETE, true);
      await this.sink.write(header, 0);
      const bytes = Math.max(durable, layout.dataStart);
      await this.sink.setLength(bytes);
      await this.sink.commit();
      return { bytes, pagesWritten: this.descWritten, pagesPlanned: plan.keptPages, flag: 'header status DUMP_DH_COMPRESSED_INCOMPLETE' };
    } catch {
      await this.sink.abort();
      return undefined;
    }
  }

  async abort(): Promise<void> {
    this.finished = true;
    const pools = [this.pool, this.early];
    this.pool = undefined;
    this.early = undefined;
    for (const pool of pools) await pool?.close().catch(() => undefined);
    await this.sink.abort();
  }

  private requirePlan(): OutputPlan {
    if (!this.plan) throw new Error('KdumpWriter: begin() was not called');
    return this.plan;
  }
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1]!;
  return t;
})();
