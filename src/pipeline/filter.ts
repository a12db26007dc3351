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
import { DumpError, UsageError } from '../core/errors.js';
import type { RangeSet } from '../core/rangeset.js';
import { AtomicFileSink, StreamWriter, type PositionalSink } from '../io/sink.js';
import { readUtsname } from '../kernel/utsname.js';
import { MeteredSource, type ByteSource } from '../io/source.js';
import { checkOutputs } from '../io/paths.js';
import { ElfDumpWriter } from '../formats/elf/writer.js';
import { KdumpWriter } from '../formats/kdump/writer.js';
import { FlatSink } from '../formats/flat/writer.js';
import { PfnState, type Codec, type DumpReader, type DumpWriter, type OutputPlan, type Utsname } from '../formats/types.js';
import { MemMapFlagSource, type FlagSourceDescription, type PageFlagSource } from '../classify/flagsource.js';
import { DL, Reason, REASON_COUNT, REASON_NAMES } from '../classify/reasons.js';
import type { RamOracle } from '../ram/oracle.js';
import { describePipelineInput, inputPaths, openPipelineInput, type PipelineInput } from './open.js';
import { WINDOW, WindowClassifier } from './window.js';
import { ReasonsMapWriter } from './reasons-map.js';
import { DEFAULT_COSTS, costStrategies, type CostParams, type StrategyCost } from './cost.js';
import { openFlagTable } from './flags.js';
import { protection, type Protection } from './protect.js';

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
  done: number;
  total: number;
}

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
  output: { file: string; format: OutputFormat; flattened: boolean; codec: Codec; bytes: number; segments?: number | undefined };
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

/** Pages read per batch: 1 MiB of 4 KiB pages. */
const CHUNK = 256;

/** Maximal runs [i, j) of KEPT in a window's reasons. */
function* runsOfKept(reasons: Uint8Array, n: number): Generator<[number, number]> {
  for (let i = 0; i < n; ) {
    if (reasons[i] !== Reason.KEPT) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && reasons[j] === Reason.KEPT) j++;
    yield [i, j];
    i = j;
  }
}

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
  constructor(
    private readonly reader: DumpReader,
    bytes: number,
  ) {
    this.bufs = [Buffer.alloc(bytes), Buffer.alloc(bytes)];
  }

  async *read(w: number, reasons: Uint8Array, n: number, max: number): AsyncGenerator<Chunk> {
    const list: Array<[number, number]> = [];
    for (const [i, j] of runsOfKept(reasons, n)) for (let k = i; k < j; k += max) list.push([w + k, Math.min(max, j - k)]);
    let pending: Promise<void> | undefined;
    const start = (idx: number): Promise<void> => this.reader.readPages(list[idx]![0], list[idx]![1], (idx & 1 ? this.bufs[1] : this.bufs[0]));
    if (list.length) pending = start(0);
    try {
      for (let idx = 0; idx < list.length; idx++) {
        await pending;
        pending = idx + 1 < list.length ? start(idx + 1) : undefined;
        yield { pfn: list[idx]![0], count: list[idx]![1], data: (idx & 1 ? this.bufs[1] : this.bufs[0]) };
      }
    } finally {
      // A consumer that stops early must not leave a read in flight.
      await pending?.catch(() => undefined);
    }
  }
}

export async function filterDump(opts: FilterOptions): Promise<FilterReport> {
  const t0 = performance.now();
  const level = opts.dumpLevel ?? 0;
  if (!Number.isInteger(level) || level < 0 || level > 31) throw new UsageError(`dump level ${level} is not in 0..31`);
  const format: OutputFormat = opts.format ?? 'kdump';
  const codec: Codec = opts.codec ?? 'none';
  if (format === 'elf' && codec !== 'none') throw new UsageError('ELF output (-E) cannot be compressed (-c/-l/-p/-z)');
  if (!opts.output && !opts.flattened && !opts.sink) throw new UsageError('an output file is needed (or -F to write the flattened format to standard output)');
  if (opts.output && opts.flattened) throw new UsageError('-F writes the flattened format to standard output; redirect it instead of naming an output file');

  await checkOutputs({ outputs: [opts.output, opts.reasonsFile], inputs: [...inputPaths(opts.input), opts.flagsTable], force: opts.force ?? false });

  let meter: MeteredSource | undefined;
  const wrap = (src: ByteSource): ByteSource => {
    const inner = opts.wrapSource ? opts.wrapSource(src) : src;
    meter = new MeteredSource(inner);
    return meter;
  };
  const reader = await openPipelineInput(opts.input, wrap);
  let flags: PageFlagSource | undefined;
  let writer: DumpWriter | undefined;
  try {
    flags = await chooseFlagSource(reader, level, opts.flagsTable);
    const prot = await protection(reader, flags, opts.protect);
    const protect = prot.set;
    const wc = new WindowClassifier(reader, flags, level, opts.oracle, protect);
    wc.auditing = true;
    const info = reader.info;
    const maxPfn = Math.min(info.maxPfn, flags?.pfnLimit ?? Infinity);
    const ps = info.pageSize;
    const zeroOut = (level & DL.ZERO) !== 0;
    const zeroMask = new Uint8Array(CHUNK);
    const zeroPage = Buffer.alloc(ps);
    const chunks = new ChunkReader(reader, CHUNK * ps);

    // Zero pages of protected ranges stay (an ELF gap there would make
    // crash stop with "page excluded"); kdump redirects them harmlessly.
    const protectZeros = format === 'elf' ? protect : undefined;
    const markZeros = (data: Buffer, pfn: number, n: number): number => {
      let z = 0;
      for (let k = 0; k < n; k++) {
        const isZero = data.compare(zeroPage, 0, ps, k * ps, (k + 1) * ps) === 0 && !protectZeros?.has(pfn + k);
        zeroMask[k] = isZero ? 1 : 0;
        if (isZero) z++;
      }
      return z;
    };

    // ---- plan ----
    let keptPages = 0;
    let keptRuns = 0;
    let runEnd = -1;
    const countRun = (pfn: number, n: number): void => {
      if (pfn !== runEnd) keptRuns++;
      runEnd = pfn + n;
    };
    for (let w = 0; w < maxPfn; w += WINDOW) {
      const n = Math.min(WINDOW, maxPfn - w);
      opts.onProgress?.({ phase: 'plan', done: w, total: maxPfn });
      if (!(await wc.classify(w, n))) continue;
      const reasons = wc.reasons;
      for (const [i, j] of runsOfKept(reasons, n)) {
        keptPages += j - i;
        if (!(format === 'elf' && zeroOut)) countRun(w + i, j - i);
      }
      if (format === 'elf' && zeroOut) {
        // ELF drops zero pages from the file, so runs depend on content.
        for await (const c of chunks.read(w, reasons, n, CHUNK)) {
          markZeros(c.data, c.pfn, c.count);
          for (let q = 0; q < c.count; q++) if (!zeroMask[q]) countRun(c.pfn + q, 1);
        }
      }
    }
    const planTally = { ...wc.oracleTally };
    const audit = { ...wc.audit };
    wc.auditing = false;
    opts.onProgress?.({ phase: 'plan', done: maxPfn, total: maxPfn });

    // ---- write ----
    const sink = await openSink(opts);
    const out: DumpWriter = format === 'elf' ? new ElfDumpWriter(sink) : new KdumpWriter(sink, codec, opts.threads === undefined ? {} : { threads: opts.threads });
    writer = out;
    const plan: OutputPlan = {
      pageSize: ps,
      maxPfn,
      keptPages,
      keptRuns,
      dumpLevel: level,
      notes: info.notes,
      vmcoreinfo: info.vmcoreinfo,
      cpus: info.cpus,
      utsname: await utsnameOf(reader, flags),
      timestamp: info.vmcoreinfo?.crashTime ?? Math.floor(Date.now() / 1000),
      physBase: info.vmcoreinfo?.number('phys_base') ?? 0,
      pageOffset: pageOffsetOf(reader),
    };
    await out.begin(plan);
    const reasonsMap = opts.reasonsFile ? await ReasonsMapWriter.create(opts.reasonsFile, describePipelineInput(opts.input), level, ps) : undefined;

    const counts = new Float64Array(REASON_COUNT);
    const ramBits = new Uint8Array(WINDOW / 8);
    const dumpBits = new Uint8Array(WINDOW / 8);
    wc.reset();
    try {
      for (let w = 0; w < maxPfn; w += WINDOW) {
        const n = Math.min(WINDOW, maxPfn - w);
        opts.onProgress?.({ phase: 'write', done: w, total: maxPfn });
        const hasRam = await wc.classify(w, n);
        const { reasons, states } = wc;
        const nb = Math.ceil(n / 8);
        ramBits.fill(0, 0, nb);
        dumpBits.fill(0, 0, nb);
        if (hasRam) {
          for (let i = 0; i < n; i++) {
            if (states[i] !== PfnState.HOLE) ramBits[i >> 3]! |= 1 << (i & 7);
            if (reasons[i] === Reason.KEPT) dumpBits[i >> 3]! |= 1 << (i & 7);
          }
        }
        await out.bitmaps({ start: w, count: n, ram: ramBits.subarray(0, nb), dumped: dumpBits.subarray(0, nb) });
        if (hasRam) {
          for await (const c of chunks.read(w, reasons, n, CHUNK)) {
            if (zeroOut) {
              if (markZeros(c.data, c.pfn, c.count) > 0) for (let q = 0; q < c.count; q++) if (zeroMask[q]) reasons[c.pfn - w + q] = Reason.ZERO;
              await out.writePages(c.pfn, c.count, c.data, zeroMask);
            } else {
              await out.writePages(c.pfn, c.count, c.data);
            }
          }
        }
        for (let i = 0; i < n; i++) counts[reasons[i]!]!++;
        if (reasonsMap) await reasonsMap.window(w, n, reasons);
      }
      opts.onProgress?.({ phase: 'write', done: maxPfn, total: maxPfn });
      const summary = await out.end();
      writer = undefined;
      if (reasonsMap) await reasonsMap.commit();

      const excluded: Record<string, number> = {};
      let excludedTotal = 0;
      for (let r = 0; r < REASON_COUNT; r++) {
        if (r === Reason.HOLE || r === Reason.KEPT || r === Reason.ABSENT) continue;
        excluded[REASON_NAMES[r]!] = counts[r]!;
        excludedTotal += counts[r]!;
      }
      const byName = (counts: Float64Array): Record<string, number> => {
        const out: Record<string, number> = {};
        counts.forEach((v, r) => {
          if (v > 0) out[REASON_NAMES[r]!] = v;
        });
        return out;
      };
      const ram = maxPfn - counts[Reason.HOLE]!;
      return {
        input: {
          file: info.file,
          format: info.format,
          bytes: info.fileSize,
          pageSize: ps,
          maxPfn,
          osrelease: info.vmcoreinfo?.osrelease,
        },
        output: {
          file: opts.output ?? opts.sink?.name ?? '-',
          format,
          flattened: !!opts.flattened,
          codec,
          bytes: summary.bytes,
          segments: summary.segments,
        },
        dumpLevel: level,
        classification: {
          source: flags ? flags.kind : 'none',
          description: flags?.describe(),
          warnings: Object.fromEntries(flags?.warnings ?? []),
        },
        pages: {
          total: maxPfn,
          ram,
          hole: counts[Reason.HOLE]!,
          absent: counts[Reason.ABSENT]!,
          kept: counts[Reason.KEPT]!,
          excluded,
          excludedTotal,
          offlineByFallback: wc.decider.stats.offlineFallback,
          offlineAlsoNotRam: wc.offlineNotRam,
          protectedKept: byName(wc.protectedOverrides),
          protectedExcluded: byName(wc.protectedExcluded),
        },
        protection: protectionReport(prot),
        oracle: opts.oracle
          ? { name: opts.oracle.name, calls: planTally.calls, pfnsAsked: planTally.pfnsAsked, notRam: planTally.notRam }
          : undefined,
        cost: costOf(opts, audit, planTally, keptPages, ps),
        bytesRead: meter?.bytesRead ?? 0,
        seconds: (performance.now() - t0) / 1000,
      };
    } catch (err) {
      await reasonsMap?.abort();
      throw err;
    }
  } catch (err) {
    // A write error of the output (the disk full): keep what was written as
    // an incomplete dump, as makedumpfile does; in the capture kernel part
    // of a dump beats none.
    const kept = await writer?.salvage?.();
    if (kept) {
      const cause = err instanceof DumpError ? err.detail : err instanceof Error ? err.message : String(err);
      throw new DumpError(
        'IO',
        `${cause}; kept an incomplete dump: ${kept.pagesWritten} of ${kept.pagesPlanned} pages (${kept.flag}), readable up to where the writing stopped`,
        { file: opts.output ?? opts.sink?.name ?? '-', cause: err },
      );
    }
    await writer?.abort();
    throw err;
  } finally {
    await flags?.close();
    await reader.close();
  }
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
        { file, offset: noteOffset(reader) },
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

function noteOffset(reader: DumpReader): number | undefined {
  const v = reader.info.details?.['notes offset'];
  return typeof v === 'number' ? v : undefined;
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
    const read = await readUtsname(vi, flags.translator).catch(() => undefined);
    if (read && read.sysname === 'Linux' && read.release) return read;
  }
  const release = vi?.osrelease ?? '';
  return { sysname: 'Linux', nodename: '', release, version: release ? '#1' : '', machine: 'x86_64', domainname: '' };
}

function pageOffsetOf(reader: DumpReader): bigint {
  const v = reader.info.details?.['page offset'];
  if (typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v)) return BigInt(v);
  return 0xffff888000000000n;
}
