/**
 * filterDump(): the streaming filter. Two passes over the page metadata,
 * one over the kept pages' data:
 *
 *   plan   classify every window (struct page / flag table, dump level,
 *          RAM oracle, protected ranges) and count what will be kept;
 *          ELF output with zero-page exclusion also checks kept pages'
 *          content here, as its program header count depends on it.
 *   write  classify again (deterministic), emit the bitmaps, read kept
 *          runs into a reused buffer and hand them to the writer.
 *
 * An excluded page is never read: not in the plan, not in the write pass.
 * Memory is bounded by the window size, whatever the image size.
 */
import type { Writable } from 'node:stream';
import { DumpError, isDumpContentError, UsageError } from '../core/errors.js';
import type { RangeSet } from '../core/rangeset.js';
import { AtomicFileSink, StreamWriter, type PositionalSink } from '../io/sink.js';
import { readUtsname } from '../kernel/utsname.js';
import { MeteredSource, type ByteSource } from '../io/source.js';
import { checkOutputs } from '../io/paths.js';
import { ElfDumpWriter } from '../formats/elf/writer.js';
import { KdumpWriter, MAX_BITMAP_BUFFER, MIN_BITMAP_BUFFER, startCompressionWorkers, type KdumpWriterOptions } from '../formats/kdump/writer.js';
import type { CompressionPool } from '../formats/kdump/codecs/pool.js';
import { FlatSink } from '../formats/flat/writer.js';
import { PfnState, type Codec, type DumpReader, type DumpWriter, type OutputPlan, type Utsname, type WriteSummary } from '../formats/types.js';
import { MemMapFlagSource, type FlagSourceDescription, type PageFlagSource } from '../classify/flagsource.js';
import { DL, Reason, REASON_COUNT, REASON_NAMES } from '../classify/reasons.js';
import type { RamOracle } from '../ram/oracle.js';
import { describePipelineInput, inputPaths, openPipelineInput, type PipelineInput } from './open.js';
import { ReadAudit, ReasonRuns, WINDOW, WindowClassifier, type DecidedWindow, type OracleTally } from './window.js';
import { runsOf, type ScanProgress } from './scan.js';
import { ReasonsMapWriter } from './reasons-map.js';
import { DEFAULT_COSTS, costStrategies, type CostParams, type StrategyCost } from './cost.js';
import { openFlagTable } from './flags.js';
import { protection, type Protection } from './protect.js';
import { nowMs } from '../core/clock.js';

export type OutputFormat = 'kdump' | 'elf';

export interface FilterOptions {
  /** A dump, the parts of a split set, `-`, a spec with a work directory (see pipeline/input.ts), or an open source. */
  input: PipelineInput;
  /** Output path. Omitted with `flattened`: the stream goes to `stdout`. */
  output?: string | undefined;
  format?: OutputFormat;
  /** makedumpfile's flattened format (-F). */
  flattened?: boolean;
  codec?: Codec;
  dumpLevel?: number;
  /** A /proc/kpageflags-style table to classify with instead of mem_map. */
  flagsTable?: string | undefined;
  oracle?: RamOracle | undefined;
  /**
   * Extra pfn ranges kept against the content rules (zero, cache, user);
   * the kernel image always is. Status rules (offline, hwpoison, not RAM,
   * free, unaccepted) win over protection.
   */
  protect?: RangeSet | undefined;
  /** Replace existing output files (never the input). */
  force?: boolean | undefined;
  /** Write a per-page exclusion-reason map here. */
  reasonsFile?: string | undefined;
  /** Cost parameters of the reading-cost comparison (defaults: DEFAULT_COSTS). */
  costs?: Partial<CostParams> | undefined;
  /** Compression worker threads (kdump output); default: the writer's choice by codec and CPUs. */
  threads?: number | undefined;
  /**
   * A bound in MiB on the run's resident memory (`--memory-limit`): with
   * no `threads`, only as many compression workers as fit (kdump output;
   * WORKER_BUDGET in the kdump writer says what each costs).
   */
  memoryLimitMiB?: number | undefined;
  /** Bytes of each bitmap buffer of kdump output (makedumpfile's --cyclic-buffer, in KiB there). */
  bitmapBuffer?: number | undefined;
  /**
   * Bytes the plan pass may keep of its decisions for the write pass to
   * replay (default 8 MiB); past it (or at 0) the write pass classifies
   * again. Either way the output is the same.
   */
  decisionsBudget?: number | undefined;
  /**
   * Inputs of at least this many pfns start their compression workers
   * before the plan pass (default 2^18, EARLY_WORKERS_MIN_PFNS); smaller
   * ones when the writer begins. Either way the output is the same.
   */
  earlyWorkersMinPfns?: number | undefined;
  /** Stream for flattened output without a path (default process.stdout). */
  stdout?: Writable | undefined;
  onProgress?: ((p: Progress) => void) | undefined;
  /** Wrap the input source (tests: count what is read). */
  wrapSource?: ((src: ByteSource) => ByteSource) | undefined;
  /** Write into this sink instead of `output` (tests, embedding); a file sink keeps an incomplete dump after a write error. */
  sink?: PositionalSink | undefined;
}

export interface Progress {
  phase: 'plan' | 'write';
  /** The run's phases, in order. */
  phases: readonly ['plan', 'write'];
  done: number;
  total: number;
}

const PHASES = ['plan', 'write'] as const;

export interface PageFigures {
  /** pfns below max_pfn. */
  total: number;
  /** RAM pfns in the input. */
  ram: number;
  hole: number;
  /** RAM the input holds no data for. */
  absent: number;
  /** Pages whose data the output holds (zero pages redirected to one shared page count as excluded). */
  kept: number;
  /** Excluded pages per reason name (zero, cache, cache-private, user, free, unaccepted, hwpoison, offline, not-ram). */
  excluded: Record<string, number>;
  excludedTotal: number;
  /** Offline pages found without the VMCOREINFO key (included in excluded.offline). */
  offlineByFallback: number;
  /** Offline pages the RAM oracle also calls not RAM. */
  offlineAlsoNotRam: number;
  /** Protected pages kept although a content rule would drop them, per reason. */
  protectedKept: Record<string, number>;
  /** Protected pages a status rule excluded all the same (never read), per reason. */
  protectedExcluded: Record<string, number>;
}

/** What was protected, and how the kernel image was found. */
export interface ProtectionReport {
  /** The kernel image: its pages and ranges, or why it was not found. */
  kernelImage:
    | { found: true; pages: number; ranges: number; mappedPages: number; rule: 'mapping-and-reserved' | 'mapping' }
    | { found: false; why: string };
  /** Pages of the kernel log's buffers. */
  logPages: number;
  /** Pages named with --protect. */
  extraPages: number;
}

export function protectionReport(p: Protection): ProtectionReport {
  const image = p.image;
  return {
    kernelImage: image.found
      ? { found: true, pages: image.ranges.size, ranges: image.ranges.rangeCount, mappedPages: image.mapped, rule: image.rule }
      : { found: false, why: image.why },
    logPages: p.logPages,
    extraPages: p.extraPages,
  };
}

export interface FilterReport {
  input: { file: string; format: string; bytes: number; pageSize: number; maxPfn: number; osrelease?: string | undefined };
  output: { file: string; format: OutputFormat; flattened: boolean; codec: Codec; bytes: number; segments?: number | undefined; workers?: number | undefined };
  dumpLevel: number;
  classification: {
    source: 'mem_map' | 'kpageflags' | 'none';
    description?: FlagSourceDescription | undefined;
    warnings: Record<string, number>;
  };
  pages: PageFigures;
  protection: ProtectionReport;
  oracle?: { name: string; calls: number; pfnsAsked: number; notRam: number } | undefined;
  /** What reading the guest's memory costs, this run against plain copies and a flag-only filter. */
  cost: { params: CostParams; strategies: StrategyCost[] };
  /** Bytes read from the input file. */
  bytesRead: number;
  seconds: number;
}

/** The x86_64 direct map's base with 4-level paging (__PAGE_OFFSET_BASE_L4), for outputs when the input does not say. */
const X86_64_DIRECT_MAP = 0xffff888000000000n;

/**
 * Pages read per batch: 256 KiB of 4 KiB pages, two buffers (one being
 * read ahead). Larger batches read no faster and cost resident memory,
 * which a capture kernel is short of (docs/kdump.md).
 */
const CHUNK = 64;

interface Chunk {
  pfn: number;
  count: number;
  /** Valid until the next chunk is requested. */
  data: Buffer;
}

/**
 * Reads the kept pages of a window in chunks, one chunk ahead: while the
 * caller compresses and writes chunk i, chunk i+1 is being read. Two
 * reused buffers, nothing allocated per chunk.
 */
class ChunkReader {
  private readonly bufs: [Buffer, Buffer];
  /** (pfn, count) of each chunk of the current read. */
  private readonly list: number[] = [];
  constructor(
    private readonly reader: DumpReader,
    bytes: number,
  ) {
    this.bufs = [Buffer.alloc(bytes), Buffer.alloc(bytes)];
  }

  /** The pages of `runs` ((pfn, count) pairs, ascending), in chunks of at most `max` pages. */
  async *read(runs: readonly number[], max: number): AsyncGenerator<Chunk> {
    const list = this.list;
    list.length = 0;
    for (let r = 0; r < runs.length; r += 2) {
      const pfn = runs[r]!;
      const n = runs[r + 1]!;
      for (let k = 0; k < n; k += max) list.push(pfn + k, Math.min(max, n - k));
    }
    const chunks = list.length >> 1;
    let pending: Promise<void> | undefined;
    const start = (idx: number): Promise<void> => this.reader.readPages(list[2 * idx]!, list[2 * idx + 1]!, idx & 1 ? this.bufs[1] : this.bufs[0]);
    if (chunks) pending = start(0);
    try {
      for (let idx = 0; idx < chunks; idx++) {
        await pending;
        pending = idx + 1 < chunks ? start(idx + 1) : undefined;
        yield { pfn: list[2 * idx]!, count: list[2 * idx + 1]!, data: idx & 1 ? this.bufs[1] : this.bufs[0] };
      }
    } finally {
      // A consumer that stops early must not leave a read in flight.
      await pending?.catch(() => undefined);
    }
  }
}

/**
 * Zero pages of a chunk of kept pages (dump level bit 1). Zero pages of
 * protected ranges stay in ELF output (a gap there would make crash stop
 * with "page excluded"); kdump points every zero page at one shared block,
 * so they stay readable there anyway.
 */
class ZeroMarker {
  readonly mask = new Uint8Array(CHUNK);
  private readonly zero: Buffer;
  constructor(
    private readonly pageSize: number,
    private readonly keep: RangeSet | undefined,
  ) {
    this.zero = Buffer.alloc(pageSize);
  }

  /**
   * Mark the zero pages of `data` (pages [pfn, pfn+n)); returns how many.
   * A page with a non-zero word among its first or last 16 bytes is not
   * zero, without a call to the native compare (85 ns a page, most of it
   * the call); the rest are compared whole.
   */
  mark(data: Buffer, pfn: number, n: number): number {
    const ps = this.pageSize;
    const wpp = ps >> 2;
    const words = (data.byteOffset & 3) === 0 ? new Int32Array(data.buffer, data.byteOffset, n * wpp) : undefined;
    let z = 0;
    for (let k = 0; k < n; k++) {
      const a = k * wpp;
      const e = a + wpp;
      const edges = words ? words[a]! | words[a + 1]! | words[a + 2]! | words[a + 3]! | words[e - 1]! | words[e - 2]! | words[e - 3]! | words[e - 4]! : 0;
      const isZero = edges === 0 && data.compare(this.zero, 0, ps, k * ps, (k + 1) * ps) === 0 && !this.keep?.has(pfn + k);
      this.mask[k] = isZero ? 1 : 0;
      if (isZero) z++;
    }
    return z;
  }
}

/** One filter run: its options and what it opened. */
interface FilterRun {
  opts: FilterOptions;
  level: number;
  format: OutputFormat;
  codec: Codec;
  reader: DumpReader;
  flags: PageFlagSource | undefined;
  prot: Protection;
  classifier: WindowClassifier;
  chunks: ChunkReader;
  zeros: ZeroMarker;
}

/** What the plan pass found: what the writer must know up front, and what it cost. */
interface FilterPlan {
  keptPages: number;
  keptRuns: number;
  tally: OracleTally;
  audit: ReadAudit;
  /** Its decisions, for the write pass to replay (when they fitted the budget). */
  decisions: ReasonRuns;
  /** The flag source's warnings after this pass (pfns counted once, whether or not the write pass classifies again). */
  warnings: Record<string, number>;
}

/**
 * Bytes the plan pass may keep of its decisions (run-length coded) so
 * that the write pass does not read and decode struct pages again: about
 * 17 KiB for a 2 GiB guest at -d 31, so whole guests of several TiB fit.
 * Past it, the write pass classifies again.
 */
const DECISIONS_BUDGET = 8 << 20;

/**
 * Inputs of fewer pfns (1 GiB of 4 KiB pages) do not start compression
 * workers before the plan pass: their output is often too small for
 * workers (under 4096 pages at -d 31), and workers started and closed for
 * nothing cost a small run more than the early start saves a large one
 * (a 32 MiB guest at -c: 172 → 199 ms; a 2 GiB one: 1.64 → 1.60 s).
 */
const EARLY_WORKERS_MIN_PFNS = 1 << 18;

function writerOptions(opts: FilterOptions): KdumpWriterOptions {
  const w: KdumpWriterOptions = {};
  if (opts.threads !== undefined) w.threads = opts.threads;
  if (opts.memoryLimitMiB !== undefined) w.memoryLimitMiB = opts.memoryLimitMiB;
  if (opts.bitmapBuffer !== undefined) w.bitmapBuffer = opts.bitmapBuffer;
  return w;
}

function checkFilterOptions(opts: FilterOptions): { level: number; format: OutputFormat; codec: Codec } {
  const level = opts.dumpLevel ?? 0;
  if (!Number.isInteger(level) || level < 0 || level > 31) throw new UsageError(`dump level ${level} is not in 0..31`);
  const format: OutputFormat = opts.format ?? 'kdump';
  const codec: Codec = opts.codec ?? 'none';
  if (format === 'elf' && codec !== 'none') throw new UsageError('ELF output (-E) cannot be compressed (-c/-l/-p/-z)');
  if (!opts.output && !opts.flattened && !opts.sink) throw new UsageError('an output file is needed (or -F to write the flattened format to standard output)');
  if (opts.output && opts.flattened) throw new UsageError('-F writes the flattened format to standard output; redirect it instead of naming an output file');
  const bm = opts.bitmapBuffer;
  if (bm !== undefined && (!Number.isInteger(bm) || bm < MIN_BITMAP_BUFFER || bm > MAX_BITMAP_BUFFER)) {
    throw new UsageError(`the bitmap buffer (--cyclic-buffer) must be ${MIN_BITMAP_BUFFER >> 10} to ${MAX_BITMAP_BUFFER >> 10} KiB, not ${bm / 1024}`);
  }
  const limit = opts.memoryLimitMiB;
  if (limit !== undefined && (!Number.isFinite(limit) || limit <= 0)) throw new UsageError(`--memory-limit must be a positive number of MiB, not ${limit}`);
  return { level, format, codec };
}

export async function filterDump(opts: FilterOptions): Promise<FilterReport> {
  const t0 = nowMs();
  const { level, format, codec } = checkFilterOptions(opts);
  await checkOutputs({ outputs: [opts.output, opts.reasonsFile], inputs: [...inputPaths(opts.input), opts.flagsTable], force: opts.force ?? false });

  let meter: MeteredSource | undefined;
  const reader = await openPipelineInput(opts.input, (src: ByteSource): ByteSource => (meter = new MeteredSource(opts.wrapSource ? opts.wrapSource(src) : src)));
  let flags: PageFlagSource | undefined;
  let writer: DumpWriter | undefined;
  // Compression workers start now, so that their start-up (a V8 isolate
  // each, ~50 ms of CPU) runs beside the plan pass instead of after it.
  let workers: CompressionPool | undefined;
  try {
    const ps = reader.info.pageSize;
    if (format === 'kdump' && reader.info.maxPfn >= (opts.earlyWorkersMinPfns ?? EARLY_WORKERS_MIN_PFNS)) workers = startCompressionWorkers(codec, ps, writerOptions(opts), reader.info.maxPfn);
    flags = await chooseFlagSource(reader, level, opts.flagsTable);
    const prot = await protection(reader, flags, opts.protect);
    const run: FilterRun = {
      opts,
      level,
      format,
      codec,
      reader,
      flags,
      prot,
      classifier: new WindowClassifier(reader, flags, level, opts.oracle, prot.set),
      chunks: new ChunkReader(reader, CHUNK * ps),
      zeros: new ZeroMarker(ps, format === 'elf' ? prot.set : undefined),
    };
    const plan = await planPass(run);
    const sink = await openSink(opts);
    writer = format === 'elf' ? new ElfDumpWriter(sink) : new KdumpWriter(sink, codec, { ...writerOptions(opts), pool: workers });
    workers = undefined;
    await writer.begin(await outputPlan(run, plan));
    const written = await writePass(run, plan, writer);
    writer = undefined;
    return filterReport(run, plan, written, meter?.bytesRead ?? 0, t0);
  } catch (err) {
    throw await keepIncomplete(writer, opts, err);
  } finally {
    await workers?.close();
    await flags?.close();
    await reader.close();
  }
}

/**
 * After an error: a write error of the output (the disk full) keeps what
 * was written as an incomplete dump, as makedumpfile does (in the capture
 * kernel part of a dump beats none); anything else removes the output.
 * Returns the error to throw.
 */
async function keepIncomplete(writer: DumpWriter | undefined, opts: FilterOptions, err: unknown): Promise<unknown> {
  const kept = await writer?.salvage?.();
  if (!kept) {
    await writer?.abort();
    return err;
  }
  const cause = err instanceof DumpError ? err.detail : err instanceof Error ? err.message : String(err);
  return new DumpError(
    'IO',
    `${cause}; kept an incomplete dump: ${kept.pagesWritten} of ${kept.pagesPlanned} pages (${kept.flag}), readable up to where the writing stopped`,
    { file: opts.output ?? opts.sink?.name ?? '-', cause: err },
  );
}

/**
 * The plan pass: classify every window and count what will be kept. Page
 * contents are not read here: zero pages are found by the write pass, as
 * it reads each kept page once. Oracle questions and the reading-cost
 * audit are counted here, once.
 */
async function planPass(run: FilterRun): Promise<FilterPlan> {
  const audit = new ReadAudit(run.opts.oracle);
  const decisions = new ReasonRuns(run.opts.decisionsBudget ?? DECISIONS_BUDGET);
  let keptPages = 0;
  let keptRuns = 0;
  let runEnd = -1;
  const progress = (p: ScanProgress): void => run.opts.onProgress?.({ phase: 'plan', phases: PHASES, ...p });
  const kept: number[] = [];
  for await (const w of run.classifier.windows(progress, audit)) {
    if (w.ram) {
      keptOf(w, kept);
      for (let k = 0; k < kept.length; k += 2) {
        keptPages += kept[k + 1]!;
        if (kept[k] !== runEnd) keptRuns++;
        runEnd = kept[k]! + kept[k + 1]!;
      }
    }
    decisions.record(w.start, w.count, w.reasons);
  }
  decisions.seal();
  const warnings = Object.fromEntries(run.flags?.warnings ?? []);
  return { keptPages, keptRuns, tally: { ...(run.classifier.oracle?.tally ?? { calls: 0, pfnsAsked: 0, notRam: 0 }) }, audit, decisions, warnings };
}

async function outputPlan(run: FilterRun, plan: FilterPlan): Promise<OutputPlan> {
  const info = run.reader.info;
  return {
    pageSize: info.pageSize,
    maxPfn: run.classifier.maxPfn,
    keptPages: plan.keptPages,
    keptRuns: plan.keptRuns,
    dumpLevel: run.level,
    notes: info.notes,
    vmcoreinfo: info.vmcoreinfo,
    cpus: info.cpus,
    utsname: await utsnameOf(run.reader, run.flags),
    timestamp: info.vmcoreinfo?.crashTime ?? Math.floor(Date.now() / 1000),
    physBase: info.vmcoreinfo?.number('phys_base') ?? 0,
    pageOffset: run.reader.info.pageOffset ?? X86_64_DIRECT_MAP,
  };
}

/** The kept runs of a window as (pfn, count) pairs into `out`: from its coded runs when replayed, else from its reasons. */
function keptOf(w: DecidedWindow, out: number[]): void {
  out.length = 0;
  const c = w.coded;
  if (c) {
    for (let q = c.from, i = w.start; q < c.to; q++) {
      const v = c.codes[q]!;
      if ((v & 15) === Reason.KEPT) out.push(i, v >>> 4);
      i += v >>> 4;
    }
    return;
  }
  for (const [i, j] of runsOf(w.reasons, w.count, Reason.KEPT)) out.push(w.start + i, j - i);
}

/** Set bits [a, b) of a bitmap (bit i of byte i >> 3 is pfn i, as in kdump's bitmaps). */
function setBits(bits: Uint8Array, a: number, b: number): void {
  if (a >= b) return;
  let lo = a >> 3;
  const hi = b >> 3;
  if (lo === hi) {
    bits[lo]! |= ((1 << (b - a)) - 1) << (a & 7);
    return;
  }
  if (a & 7) bits[lo++]! |= (0xff << (a & 7)) & 0xff;
  if (hi > lo) bits.fill(0xff, lo, hi);
  if (b & 7) bits[hi]! |= (1 << (b & 7)) - 1;
}

/**
 * A window's two bitmaps (RAM: not a hole; dumped: kept) and its pages
 * added to `counts` by reason: a run at a time for a replayed window, else
 * a byte of each at a time. Returns the bytes of each bitmap.
 */
function windowBitmaps(w: DecidedWindow, ramBits: Uint8Array, dumpBits: Uint8Array, counts: Float64Array): number {
  const { count: n, reasons, states, coded } = w;
  const nb = Math.ceil(n / 8);
  if (coded) {
    ramBits.fill(0, 0, nb);
    dumpBits.fill(0, 0, nb);
    for (let q = coded.from, i = 0; q < coded.to; q++) {
      const v = coded.codes[q]!;
      const r = v & 15;
      const len = v >>> 4;
      counts[r]! += len;
      if (r !== Reason.HOLE) setBits(ramBits, i, i + len);
      if (r === Reason.KEPT) setBits(dumpBits, i, i + len);
      i += len;
    }
    return nb;
  }
  if (!w.ram) {
    ramBits.fill(0, 0, nb);
    dumpBits.fill(0, 0, nb);
    for (let i = 0; i < n; i++) counts[reasons[i]!]!++;
    return nb;
  }
  for (let b = 0; b < nb; b++) {
    const first = b << 3;
    const last = Math.min(first + 8, n);
    let ram = 0;
    let dumped = 0;
    for (let i = first; i < last; i++) {
      const r = reasons[i]!;
      counts[r]!++;
      if (states[i] !== PfnState.HOLE) ram |= 1 << (i - first);
      if (r === Reason.KEPT) dumped |= 1 << (i - first);
    }
    ramBits[b] = ram;
    dumpBits[b] = dumped;
  }
  return nb;
}

/**
 * The write pass: the plan's decisions again (replayed, or classified
 * again when they did not fit the budget: the same decisions), emit each
 * window's bitmaps, read its kept pages one chunk ahead and hand them to
 * the writer. Returns the pages per reason and the writer's summary.
 */
async function writePass(run: FilterRun, plan: FilterPlan, out: DumpWriter): Promise<{ counts: Float64Array; summary: WriteSummary }> {
  const { opts } = run;
  const zeroOut = (run.level & DL.ZERO) !== 0;
  const reasonsMap = opts.reasonsFile ? await ReasonsMapWriter.create(opts.reasonsFile, describePipelineInput(opts.input), run.level, run.reader.info.pageSize) : undefined;
  const counts = new Float64Array(REASON_COUNT);
  const ramBits = new Uint8Array(WINDOW / 8);
  const dumpBits = new Uint8Array(WINDOW / 8);
  try {
    const progress = (p: ScanProgress): void => opts.onProgress?.({ phase: 'write', phases: PHASES, ...p });
    // Per-pfn reasons are only needed for the reasons map; without one a replay is worked from its runs.
    const windows: AsyncIterable<DecidedWindow> | Iterable<DecidedWindow> = plan.decisions.complete
      ? plan.decisions.replay(progress, reasonsMap !== undefined)
      : run.classifier.windows(progress);
    const kept: number[] = [];
    for await (const w of windows) {
      const { start, count: n, reasons } = w;
      const nb = windowBitmaps(w, ramBits, dumpBits, counts);
      await out.bitmaps({ start, count: n, ram: ramBits.subarray(0, nb), dumped: dumpBits.subarray(0, nb) });
      if (w.ram) {
        keptOf(w, kept);
        for await (const c of run.chunks.read(kept, CHUNK)) {
          // Progress within the window too: the write pass is where the time goes.
          opts.onProgress?.({ phase: 'write', phases: PHASES, done: c.pfn + c.count, total: run.classifier.maxPfn });
          if (!zeroOut) {
            await out.writePages(c.pfn, c.count, c.data);
            continue;
          }
          let zeros = run.zeros.mark(c.data, c.pfn, c.count);
          await out.writePages(c.pfn, c.count, c.data, run.zeros.mask);
          if (zeros > 0) {
            // Kept in the bitmaps (kdump points them at the shared zero page), counted as zero;
            // the writer unmarked those it stored as data after all.
            zeros = 0;
            for (let q = 0; q < c.count; q++) {
              if (run.zeros.mask[q]) {
                if (reasonsMap) reasons[c.pfn - start + q] = Reason.ZERO;
                zeros++;
              }
            }
            counts[Reason.KEPT]! -= zeros;
            counts[Reason.ZERO]! += zeros;
          }
        }
      }
      if (reasonsMap) await reasonsMap.window(start, n, reasons);
    }
    const summary = await out.end();
    if (reasonsMap) await reasonsMap.commit();
    return { counts, summary };
  } catch (err) {
    await reasonsMap?.abort();
    throw err;
  }
}

/** Non-zero counts by reason name. */
function byReasonName(counts: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  counts.forEach((v, r) => {
    if (v > 0) out[REASON_NAMES[r]!] = v;
  });
  return out;
}

function filterReport(run: FilterRun, plan: FilterPlan, written: { counts: Float64Array; summary: WriteSummary }, bytesRead: number, t0: number): FilterReport {
  const { opts, reader, flags, classifier } = run;
  const { counts, summary } = written;
  const info = reader.info;
  const maxPfn = classifier.maxPfn;
  const excluded: Record<string, number> = {};
  let excludedTotal = 0;
  for (let r = 0; r < REASON_COUNT; r++) {
    if (r === Reason.HOLE || r === Reason.KEPT || r === Reason.ABSENT) continue;
    excluded[REASON_NAMES[r]!] = counts[r]!;
    excludedTotal += counts[r]!;
  }
  const none = new Float64Array(REASON_COUNT);
  return {
    input: { file: info.file, format: info.format, bytes: info.fileSize, pageSize: info.pageSize, maxPfn, osrelease: info.vmcoreinfo?.osrelease },
    output: {
      file: opts.output ?? opts.sink?.name ?? '-',
      format: run.format,
      flattened: !!opts.flattened,
      codec: run.codec,
      bytes: summary.bytes,
      segments: summary.segments,
      workers: summary.workers,
    },
    dumpLevel: run.level,
    classification: { source: flags ? flags.kind : 'none', description: flags?.describe(), warnings: plan.warnings },
    pages: {
      total: maxPfn,
      ram: maxPfn - counts[Reason.HOLE]!,
      hole: counts[Reason.HOLE]!,
      absent: counts[Reason.ABSENT]!,
      kept: counts[Reason.KEPT]!,
      excluded,
      excludedTotal,
      offlineByFallback: classifier.decider.stats.offlineFallback,
      offlineAlsoNotRam: classifier.oracle?.offlineNotRam ?? 0,
      protectedKept: byReasonName(classifier.protect?.kept ?? none),
      protectedExcluded: byReasonName(classifier.protect?.excluded ?? none),
    },
    protection: protectionReport(run.prot),
    oracle: opts.oracle ? { name: opts.oracle.name, ...plan.tally } : undefined,
    cost: costOf(opts, plan.audit, plan.tally, plan.keptPages, info.pageSize),
    bytesRead,
    seconds: (nowMs() - t0) / 1000,
  };
}

function costOf(
  opts: FilterOptions,
  audit: { ramPages: number; ramCalls: number; ramNotRam: number },
  tally: { calls: number; pfnsAsked: number; notRam: number },
  keptPages: number,
  pageSize: number,
): { params: CostParams; strategies: StrategyCost[] } {
  const params: CostParams = { ...DEFAULT_COSTS, ...opts.costs };
  const hasOracle = opts.oracle !== undefined;
  const strategies = costStrategies(params, {
    ramPages: audit.ramPages,
    notRam: audit.ramNotRam,
    ramCalls: audit.ramCalls,
    // Pages the flags keep: with an oracle, exactly the pages it was asked about.
    flagKept: hasOracle ? tally.pfnsAsked : keptPages,
    flagKeptNotRam: tally.notRam,
    flagKeptCalls: hasOracle ? tally.calls : keptPages,
    hasOracle,
    pageSize,
  });
  return { params, strategies };
}

/** The page-flag source a dump level needs: a flag table if given, else mem_map. */
export async function chooseFlagSource(reader: DumpReader, level: number, table: string | undefined): Promise<PageFlagSource | undefined> {
  const file = reader.info.file;
  if (table) return openFlagTable(table, reader);
  const vi = reader.info.vmcoreinfo;
  if (!vi) {
    if (level > 1) {
      throw new DumpError(
        'VMCOREINFO_MISSING',
        `dump level ${level} needs struct page data, but the image has no VMCOREINFO note (use -d 0 or 1, or --flags FILE.kpageflags)`,
        { file, offset: reader.info.notesOffset },
      );
    }
    return undefined;
  }
  let src: MemMapFlagSource;
  try {
    src = await MemMapFlagSource.open(reader);
  } catch (err) {
    // Levels 0/1 work without struct page (no offline/hwpoison detection then).
    if (level <= 1 && err instanceof DumpError) return undefined;
    throw err;
  }
  const missing = src.missingFor(level);
  if (missing.length) {
    throw new DumpError('VMCOREINFO_MISSING', `dump level ${level} needs ${missing.join(', ')}, absent from VMCOREINFO`, { file });
  }
  return src;
}


async function openSink(opts: FilterOptions): Promise<PositionalSink> {
  if (opts.sink) return opts.sink;
  if (opts.flattened) return new FlatSink(new StreamWriter(opts.stdout ?? process.stdout, '<stdout>'));
  return AtomicFileSink.create(opts.output!);
}

/** utsname for the kdump header: the input's, else init_uts_ns from the image, else from OSRELEASE. */
async function utsnameOf(reader: DumpReader, flags: PageFlagSource | undefined): Promise<Utsname> {
  const u = reader.info.utsname;
  if (u && u.sysname) return u;
  const vi = reader.info.vmcoreinfo;
  if (vi && flags instanceof MemMapFlagSource) {
    const read = await readUtsname(vi, flags.translator).catch((err: unknown) => {
      if (isDumpContentError(err)) return undefined;
      throw err;
    });
    if (read && read.sysname === 'Linux' && read.release) return read;
  }
  const release = vi?.osrelease ?? '';
  return { sysname: 'Linux', nodename: '', release, version: release ? '#1' : '', machine: 'x86_64', domainname: '' };
}

