/**
 * analyzeDump(): what filtering would save, before spending the kdump time
 * budget on it.
 *
 * One pass over the page metadata decides every pfn for all 16
 * combinations of the struct-page dump-level bits (2, 4, 8, 16) at once,
 * plus a "class" view (the decision at level 30: what each page is). A
 * second pass reads a deterministic sample of the pages that some level
 * keeps (never offline, hwpoisoned or not-RAM pages) and measures zero
 * pages and compressed sizes per class and codec; predicted output sizes
 * carry a 95 % error bound from the sample variance.
 */
import type { RangeSet } from '../core/rangeset.js';
import { fmix32 } from '../core/hash.js';
import { isDumpContentError, UsageError } from '../core/errors.js';
import { PfnState, type Codec, type DumpReader } from '../formats/types.js';
import { ALL_CODECS, PageCompressor, allocBatch, type CompressedBatch } from '../formats/kdump/codecs/index.js';
import { kdumpLayout, notesForOutput } from '../formats/kdump/writer.js';
import { elfLayout, elfLoadBudget } from '../formats/elf/writer.js';
import { Decider } from '../classify/decide.js';
import { isContentReason, Reason } from '../classify/reasons.js';
import type { FlagSourceDescription, PageFlagSource } from '../classify/flagsource.js';
import { Prop } from '../kernel/props.js';
import type { RamOracle } from '../ram/oracle.js';
import { chooseFlagSource, protectionReport, type ProtectionReport } from './filter.js';
import { protection } from './protect.js';
import { openPipelineInput, type PipelineInput } from './open.js';
import type { ByteSource } from '../io/source.js';
import { markNotRam, runsOf, WINDOW, WindowScan, type ScanWindow } from './scan.js';
import { DEFAULT_COSTS, type CostParams, type StrategyCost, costStrategies } from './cost.js';
import { nowMs } from '../core/clock.js';

/** What each RAM page is, for analysis. */
export const AClass = {
  HOLE: 0,
  ABSENT: 1,
  KERNEL: 2,
  CACHE: 3,
  CACHE_PRIVATE: 4,
  USER: 5,
  FREE: 6,
  UNACCEPTED: 7,
  HWPOISON: 8,
  OFFLINE: 9,
  OFFLINE_FALLBACK: 10,
  NOT_RAM: 11,
  DEVICE: 12,
} as const;
export const ACLASS_COUNT = 13;
export const ACLASS_NAMES = [
  'hole',
  'absent',
  'kernel',
  'cache',
  'cache-private',
  'user',
  'free',
  'unaccepted',
  'hwpoison',
  'offline',
  'offline-fallback',
  'not-ram',
  'device',
] as const;
export type AClassName = (typeof ACLASS_NAMES)[number];

/**
 * Sampling strata: the classes, plus one for protected pages a rule would
 * have excluded (kept whatever the level). Their contents differ from their
 * class's (freed init memory, the kernel's zero-filled bss), and ELF output
 * keeps their zero pages, so they are measured apart.
 */
const PROTECTED = ACLASS_COUNT;
const STRATA = ACLASS_COUNT + 1;
/** Strata a dump level can keep: the only ones sampled (offline pages are never read). */
const SAMPLED: readonly number[] = [AClass.KERNEL, AClass.CACHE, AClass.CACHE_PRIVATE, AClass.USER, AClass.FREE, AClass.UNACCEPTED, AClass.DEVICE, PROTECTED];
/** Classes protection turns into the protected stratum (status classes stay: they are never read). */
const PROTECTABLE: readonly number[] = [AClass.KERNEL, AClass.CACHE, AClass.CACHE_PRIVATE, AClass.USER, AClass.FREE, AClass.UNACCEPTED, AClass.DEVICE];

/** Memory-map cells per window (of 128 pfns: 512 KiB with 4 KiB pages). */
const MAP_CELLS = 256;
const MAP_CELL_PFNS = WINDOW / MAP_CELLS;

/** The most frequent RAM class of each cell of a histogram; a hole only where a cell has no RAM. */
function dominantCells(hist: Uint32Array): number[] {
  const out: number[] = [];
  for (let cell = 0; cell < MAP_CELLS; cell++) {
    let best: number = AClass.HOLE;
    let bestN = 0;
    for (let k = 1; k < ACLASS_COUNT; k++) {
      const v = hist[cell * ACLASS_COUNT + k]!;
      if (v > bestN) {
        best = k;
        bestN = v;
      }
    }
    out.push(best);
  }
  return out;
}

export interface AnalyzeOptions {
  /** A dump, the parts of a split set, `-`, a spec with a work directory (see pipeline/input.ts), or an open source. */
  input: PipelineInput;
  /** Wrap the input source (tests: count what is read). */
  wrapSource?: ((src: ByteSource) => ByteSource) | undefined;
  flagsTable?: string | undefined;
  oracle?: RamOracle | undefined;
  protect?: RangeSet | undefined;
  /** Pages to sample for content statistics (default 16384; 0: every keepable page). */
  sample?: number | undefined;
  seed?: number | undefined;
  /** Dump level the cost table's filter strategies use (default 31). */
  costLevel?: number | undefined;
  costs?: Partial<CostParams> | undefined;
  onProgress?: ((p: { phase: string; phases: readonly string[]; done: number; total: number }) => void) | undefined;
}

export interface SizePrediction {
  bytes: number;
  /** Half-width of the 95 % interval (bytes). */
  error: number;
}

export interface LevelPrediction {
  level: number;
  /** Pages kept (zero pages counted as kept at odd levels, as in the kdump 2nd bitmap). */
  keptPages: number;
  /** Estimated zero pages among the kept (excluded at odd levels). */
  zeroPages: number;
  /** Predicted kdump-compressed output size per codec. */
  kdump: Record<Codec, SizePrediction>;
  /** Predicted ELF (-E) output size. */
  elf: SizePrediction;
}

export interface ClassStat {
  pages: number;
  bytes: number;
  /** Estimated zero pages (sampled classes only). */
  zeroPages?: number | undefined;
  /** Pages sampled. */
  sampled?: number | undefined;
}

export interface AnalyzeReport {
  input: { file: string; format: string; bytes: number; pageSize: number; maxPfn: number; osrelease?: string | undefined };
  classification: { source: 'mem_map' | 'kpageflags' | 'none'; description?: FlagSourceDescription | undefined; warnings: Record<string, number> };
  classes: Record<AClassName, ClassStat>;
  protection: ProtectionReport;
  /** Offline pages the oracle also calls not RAM. */
  offlineAlsoNotRam: number;
  ramPages: number;
  predictions: LevelPrediction[];
  sample: { pages: number; requested: number; seed: number; confidence: 0.95; note: string };
  oracle?: { name: string } | undefined;
  cost: { level: number; params: CostParams; strategies: StrategyCost[] };
  /**
   * Memory map: for each window that holds RAM (windowPfns pfns from
   * `start`), the most frequent class of each of its cells of cellPfns
   * pfns (a hole only where a cell has no RAM).
   */
  map: { windowPfns: number; cellPfns: number; windows: Array<{ start: number; cells: number[] }> };
  seconds: number;
}

const ANALYZE_PHASES = ['classify', 'sample'] as const;

/** A uniform 32-bit hash of (seed, pfn): the deterministic sample choice. */
function sampleHash(seed: number, pfn: number): number {
  const hi = Math.floor(pfn / 0x1_0000_0000);
  return fmix32((pfn >>> 0) ^ fmix32(seed ^ Math.imul(hi + 1, 0x9e3779b9)));
}

/** Sums over the sampled pages of one stratum. */
interface Accum {
  n: number;
  zero: number;
  /** Per codec: sums of stored size with zero pages stored, and with zero pages dropped. */
  s0: Float64Array;
  q0: Float64Array;
  s1: Float64Array;
  q1: Float64Array;
}

export async function analyzeDump(opts: AnalyzeOptions): Promise<AnalyzeReport> {
  const t0 = nowMs();
  const costLevel = opts.costLevel ?? 31;
  if (!Number.isInteger(costLevel) || costLevel < 0 || costLevel > 31) throw new UsageError(`dump level ${costLevel} is not in 0..31`);
  const sampleTarget = opts.sample ?? 16384;
  if (!Number.isInteger(sampleTarget) || sampleTarget < 0) throw new UsageError(`sample size ${sampleTarget} is not a whole number`);
  const reader = await openPipelineInput(opts.input, opts.wrapSource);
  let flags: PageFlagSource | undefined;
  try {
    flags = await chooseFlagSource(reader, 30, opts.flagsTable).catch(async (err: unknown) => {
      // Without struct page data analysis still reports holes and zero pages.
      const f = await chooseFlagSource(reader, 1, opts.flagsTable).catch((e: unknown) => {
        if (isDumpContentError(e)) return undefined;
        throw e;
      });
      if (f) return f;
      if (reader.info.vmcoreinfo === undefined && !opts.flagsTable) return undefined;
      throw err;
    });
    const prot = await protection(reader, flags, opts.protect);
    const a = new Analysis(reader, flags, prot.set, opts);
    await a.classes();
    const accums = await a.sample(sampleTarget, opts.seed ?? 1);
    return {
      input: { file: reader.info.file, format: reader.info.format, bytes: reader.info.fileSize, pageSize: a.ps, maxPfn: a.scan.maxPfn, osrelease: reader.info.vmcoreinfo?.osrelease },
      classification: { source: flags ? flags.kind : 'none', description: flags?.describe(), warnings: Object.fromEntries(flags?.warnings ?? []) },
      classes: a.classStats(accums),
      protection: protectionReport(prot),
      offlineAlsoNotRam: a.offlineAlsoNotRam,
      ramPages: a.ramPages,
      predictions: Array.from({ length: 32 }, (_, level) => a.predict(level, accums)),
      sample: {
        pages: accums.reduce((n, x) => n + x.n, 0),
        requested: sampleTarget,
        seed: opts.seed ?? 1,
        confidence: 0.95,
        note: 'sizes are estimated per class from sampled pages; the error is the half-width of a 95 % interval (normal approximation with finite-population correction)',
      },
      oracle: opts.oracle ? { name: opts.oracle.name } : undefined,
      cost: a.cost(costLevel),
      map: { windowPfns: WINDOW, cellPfns: MAP_CELL_PFNS, windows: a.mapWindows },
      seconds: (nowMs() - t0) / 1000,
    };
  } finally {
    await flags?.close();
    await reader.close();
  }
}

/**
 * One analysis: the classes pass (what each page is, what every level
 * keeps, the memory map, the reading cost), the sample pass (content of a
 * deterministic sample of the pages some level keeps: zero pages and
 * compressed sizes per codec) and the predictions built from both.
 */
class Analysis {
  readonly scan: WindowScan;
  readonly ps: number;
  private readonly oracle: RamOracle | undefined;
  private readonly classDecider: Decider;
  private readonly combos: Decider[];
  private readonly classOut = new Uint8Array(WINDOW);
  private readonly comboOut = new Uint8Array(WINDOW);
  /** Per pfn of the current window: its analysis class, sampling stratum, and whether the oracle calls it not RAM. */
  private readonly aclass = new Uint8Array(WINDOW);
  private readonly sclass = new Uint8Array(WINDOW);
  private readonly notRam = new Uint8Array(WINDOW);

  readonly classPages = new Float64Array(ACLASS_COUNT);
  /** Pages per sampling stratum. */
  private readonly stratumPages = new Float64Array(STRATA);
  /** Per level combination (level >> 1): kept pages per stratum, kept runs, and what the flags keep for the cost table. */
  private readonly keptBy = new Float64Array(16 * STRATA);
  private readonly runsBy = new Float64Array(16);
  private readonly runEnd = new Float64Array(16).fill(-1);
  private readonly flagKeptBy = new Float64Array(16);
  private readonly flagKeptCalls = new Float64Array(16);
  private readonly flagKeptNotRam = new Float64Array(16);
  offlineAlsoNotRam = 0;
  private ramCalls = 0;
  private ramNotRam = 0;
  readonly mapWindows: Array<{ start: number; cells: number[] }> = [];

  constructor(
    private readonly reader: DumpReader,
    flags: PageFlagSource | undefined,
    private readonly protect: RangeSet | undefined,
    private readonly opts: AnalyzeOptions,
  ) {
    // As filter: the output ends where the kernel's memmap ends.
    this.scan = new WindowScan(reader, flags);
    this.ps = reader.info.pageSize;
    this.oracle = opts.oracle;
    this.classDecider = new Decider(30, flags?.freeAreaLength);
    this.combos = Array.from({ length: 16 }, (_, c) => new Decider(c << 1, flags?.freeAreaLength));
  }

  get ramPages(): number {
    return this.scan.maxPfn - this.classPages[AClass.HOLE]!;
  }

  /** The classes pass. */
  async classes(): Promise<void> {
    const cellHist = new Uint32Array(MAP_CELLS * ACLASS_COUNT);
    const { aclass, sclass, notRam, oracle } = this;
    for await (const w of this.scan.windows((p) => this.opts.onProgress?.({ phase: 'classify', phases: ANALYZE_PHASES, ...p }))) {
      const n = w.count;
      if (!w.ram) {
        this.classPages[AClass.HOLE]! += n;
        this.stratumPages[AClass.HOLE]! += n;
        continue;
      }
      this.classify(w, true);
      this.countKept(w);
      if (oracle) {
        for (let i = 0; i < n; ) {
          const c = aclass[i]!;
          if (c === AClass.HOLE || c === AClass.ABSENT) {
            i++;
            continue;
          }
          let j = i + 1;
          while (j < n && aclass[j] !== AClass.HOLE && aclass[j] !== AClass.ABSENT) j++;
          this.ramCalls += oracle.callsFor ? oracle.callsFor(w.start + i, w.start + j) : j - i;
          i = j;
        }
      }
      cellHist.fill(0);
      for (let i = 0; i < n; i++) {
        const c = aclass[i]!;
        this.classPages[c]!++;
        this.stratumPages[sclass[i]!]!++;
        if (notRam[i] && c !== AClass.ABSENT) this.ramNotRam++;
        cellHist[Math.floor(i / MAP_CELL_PFNS) * ACLASS_COUNT + c]!++;
      }
      this.mapWindows.push({ start: w.start, cells: dominantCells(cellHist) });
    }
  }

  /** The class (aclass), stratum (sclass) and oracle answer (notRam) of every pfn of a window with RAM. */
  private classify(w: ScanWindow, firstPass: boolean): void {
    const { aclass, notRam, classOut } = this;
    const n = w.count;
    this.classDecider.decide(w.states, w.props, w.start, n, classOut);
    const props = w.props?.props;
    for (let i = 0; i < n; i++) aclass[i] = classOf(classOut[i]!, props ? props[i]! : 0);
    notRam.fill(0, 0, n);
    if (this.oracle) {
      // Uncounted model look-ups: the cost table counts questions per strategy.
      markNotRam(this.oracle, w.start, n, w.states, notRam);
      for (let i = 0; i < n; i++) {
        if (!notRam[i]) continue;
        const c = aclass[i]!;
        if (c === AClass.OFFLINE || c === AClass.OFFLINE_FALLBACK) {
          if (firstPass) this.offlineAlsoNotRam++;
        } else if (c === AClass.KERNEL) aclass[i] = AClass.NOT_RAM;
      }
    }
    this.sclass.set(aclass.subarray(0, n));
    if (this.protect) {
      for (const r of this.protect.within(w.start, w.start + n)) {
        for (let i = r.start - w.start; i < r.end - w.start; i++) if (PROTECTABLE.includes(aclass[i]!)) this.sclass[i] = PROTECTED;
      }
    }
  }

  /** Every level combination's decision for the window: pages kept per stratum, runs, what the flags keep. */
  private countKept(w: ScanWindow): void {
    const { comboOut, notRam, sclass, oracle } = this;
    const n = w.count;
    for (let c = 0; c < 16; c++) {
      this.combos[c]!.decide(w.states, w.props, w.start, n, comboOut);
      if (this.protect) {
        // Protection overrides content rules only; status rules stand.
        for (const r of this.protect.within(w.start, w.start + n)) {
          for (let i = r.start - w.start; i < r.end - w.start; i++) if (isContentReason(comboOut[i]!)) comboOut[i] = Reason.KEPT;
        }
      }
      const base = c * STRATA;
      for (const [i, j] of runsOf(comboOut, n, Reason.KEPT)) {
        this.flagKeptBy[c]! += j - i;
        this.flagKeptCalls[c]! += oracle ? (oracle.callsFor ? oracle.callsFor(w.start + i, w.start + j) : j - i) : 0;
        for (let k = i; k < j; k++) {
          if (notRam[k]) {
            this.flagKeptNotRam[c]!++;
            continue;
          }
          this.keptBy[base + sclass[k]!]!++;
          const pfn = w.start + k;
          if (pfn !== this.runEnd[c]) this.runsBy[c]!++;
          this.runEnd[c] = pfn + 1;
        }
      }
    }
  }

  /**
   * The sample pass: a deterministic sample of the pages some level keeps
   * (never an offline, hwpoison or not-RAM page), compressed with every
   * codec. Half the budget goes in proportion to stratum size, half shared
   * equally: small strata (often all that a high dump level keeps) still
   * get enough pages for a tight estimate.
   */
  async sample(target: number, seed: number): Promise<Accum[]> {
    const ps = this.ps;
    const accums: Accum[] = Array.from({ length: STRATA }, () => ({
      n: 0,
      zero: 0,
      s0: new Float64Array(ALL_CODECS.length),
      q0: new Float64Array(ALL_CODECS.length),
      s1: new Float64Array(ALL_CODECS.length),
      q1: new Float64Array(ALL_CODECS.length),
    }));
    const population = SAMPLED.reduce((s, c) => s + this.stratumPages[c]!, 0);
    if (population === 0) return accums;
    const strata = SAMPLED.filter((c) => this.stratumPages[c]! > 0).length;
    const threshold = new Float64Array(STRATA);
    for (const c of SAMPLED) {
      const n = this.stratumPages[c]!;
      if (n === 0) continue;
      const share = (target / 2) * (n / Math.max(1, population)) + target / 2 / strata;
      const want = target === 0 ? n : Math.min(n, Math.max(64, Math.round(share)));
      threshold[c] = want >= n ? 2 ** 32 : (want / n) * 2 ** 32;
    }
    const batch = new SampleBatch(this.reader, ps, await Promise.all(ALL_CODECS.map((k) => PageCompressor.create(k, ps))), accums);
    this.classDecider.reset();
    for await (const w of this.scan.windows((p) => this.opts.onProgress?.({ phase: 'sample', phases: ANALYZE_PHASES, ...p }))) {
      if (!w.ram) continue;
      this.classify(w, false);
      for (let i = 0; i < w.count; i++) {
        const c = this.sclass[i]!;
        const t = threshold[c]!;
        // Never read a page the oracle calls not RAM, whatever its class.
        if (t === 0 || w.states[i] !== PfnState.PRESENT || this.notRam[i]) continue;
        if (t < 2 ** 32 && sampleHash(seed, w.start + i) >= t) continue;
        await batch.add(w.start + i, c);
      }
    }
    await batch.flush();
    return accums;
  }

  /** The predicted output sizes of one dump level, from the kept counts and the sample. */
  predict(level: number, accums: Accum[]): LevelPrediction {
    const ps = this.ps;
    const c = level >> 1;
    const zeroBit = (level & 1) === 1;
    let kept = 0;
    let zeros = 0;
    /** Zero pages of protected ranges: ELF output keeps them. */
    let protectedZeros = 0;
    const mean = new Float64Array(ALL_CODECS.length);
    const variance = new Float64Array(ALL_CODECS.length);
    let zeroVar = 0;
    for (let k = 0; k < STRATA; k++) {
      const nk = this.keptBy[c * STRATA + k]!;
      if (!nk) continue;
      kept += nk;
      const a = accums[k]!;
      if (a.n === 0) {
        // Not sampled (no present pages): count as incompressible, non-zero.
        for (let ci = 0; ci < ALL_CODECS.length; ci++) mean[ci]! += nk * ps;
        continue;
      }
      const zfrac = a.zero / a.n;
      zeros += nk * zfrac;
      if (k === PROTECTED) protectedZeros = nk * zfrac;
      const total = this.stratumPages[k]!;
      const fpc = total > 1 ? Math.max(0, (total - a.n) / (total - 1)) : 0;
      for (let ci = 0; ci < ALL_CODECS.length; ci++) {
        const s = zeroBit ? a.s1[ci]! : a.s0[ci]!;
        const q = zeroBit ? a.q1[ci]! : a.q0[ci]!;
        const m = s / a.n;
        const sd2 = a.n > 1 ? Math.max(0, (q - a.n * m * m) / (a.n - 1)) : 0;
        mean[ci]! += nk * m;
        variance[ci]! += nk * nk * (sd2 / a.n) * fpc;
      }
      if (zeroBit && a.n >= 2 && k !== PROTECTED) zeroVar += nk * nk * ((zfrac * (1 - zfrac)) / a.n) * fpc;
    }
    const sharedZero = zeroBit && zeros > 0 ? ps : 0;
    // The writers' own layouts: what comes before the page data.
    const info = this.reader.info;
    const notes = notesForOutput(info.notes, info.vmcoreinfo?.raw, info.file).notes.length;
    const kdumpHead = kdumpLayout(ps, this.scan.maxPfn, notes, kept).dataStart;
    const kdump = {} as Record<Codec, SizePrediction>;
    ALL_CODECS.forEach((k, ci) => {
      kdump[k] = { bytes: Math.round(kdumpHead + mean[ci]! + sharedZero), error: Math.round(1.96 * Math.sqrt(variance[ci]!)) };
    });
    // ELF: page data (zero pages dropped at odd levels) after the writer's
    // room for program headers, which the kept runs alone fix
    // (elfLoadBudget); the zero pages the sample estimates are the only
    // uncertainty.
    const droppedZeros = zeroBit ? Math.max(0, zeros - protectedZeros) : 0;
    const runs = this.runsBy[c]!;
    const elfHead = elfLayout(1, info.notes.length, ps, 1 + elfLoadBudget({ keptPages: kept, keptRuns: runs, dumpLevel: level })).dataStart;
    const elfBytes = elfHead + (kept - droppedZeros) * ps;
    return {
      level,
      keptPages: kept,
      zeroPages: Math.round(zeros),
      kdump,
      elf: { bytes: Math.round(elfBytes), error: Math.round(1.96 * Math.sqrt(zeroVar) * ps) },
    };
  }

  classStats(accums: Accum[]): Record<AClassName, ClassStat> {
    const classes = {} as Record<AClassName, ClassStat>;
    ACLASS_NAMES.forEach((name, k) => {
      const a = accums[k]!;
      const stat: ClassStat = { pages: this.classPages[k]!, bytes: this.classPages[k]! * this.ps };
      if (SAMPLED.includes(k) && a.n > 0) {
        stat.sampled = a.n;
        stat.zeroPages = Math.round((this.classPages[k]! * a.zero) / a.n);
      }
      classes[name] = stat;
    });
    return classes;
  }

  /** The reading-cost comparison (a model: cost parameters are stated, not measured). */
  cost(costLevel: number): AnalyzeReport['cost'] {
    const params: CostParams = { ...DEFAULT_COSTS, ...this.opts.costs };
    const cl = costLevel >> 1;
    const withData = this.ramPages - this.classPages[AClass.ABSENT]!;
    const oracle = !!this.oracle;
    const strategies = costStrategies(params, {
      ramPages: withData,
      notRam: this.ramNotRam,
      ramCalls: oracle ? this.ramCalls : withData,
      flagKept: this.flagKeptBy[cl]!,
      flagKeptNotRam: this.flagKeptNotRam[cl]!,
      flagKeptCalls: oracle ? this.flagKeptCalls[cl]! : this.flagKeptBy[cl]!,
      hasOracle: oracle,
      pageSize: this.ps,
    });
    return { level: costLevel, params, strategies };
  }
}

/** A dump-level reason (and page properties) as an analysis class. */
function classOf(r: number, p: number): number {
  switch (r) {
    case Reason.HOLE: return AClass.HOLE;
    case Reason.ABSENT: return AClass.ABSENT;
    case Reason.CACHE: return AClass.CACHE;
    case Reason.CACHE_PRIVATE: return AClass.CACHE_PRIVATE;
    case Reason.USER: return AClass.USER;
    case Reason.FREE: return AClass.FREE;
    case Reason.UNACCEPTED: return AClass.UNACCEPTED;
    case Reason.HWPOISON: return AClass.HWPOISON;
    case Reason.OFFLINE: return p & Prop.OFFLINE_FALLBACK ? AClass.OFFLINE_FALLBACK : AClass.OFFLINE;
    default: return p & Prop.DEVICE ? AClass.DEVICE : AClass.KERNEL;
  }
}

/** Sampled pages, read and compressed 64 at a time into the strata's sums. */
class SampleBatch {
  private static readonly SIZE = 64;
  private readonly pfns: number[] = [];
  private readonly strata: number[] = [];
  private readonly pages: Uint8Array;
  private readonly view: Buffer;
  private readonly zero: Buffer;
  private readonly out: CompressedBatch;

  constructor(
    private readonly reader: DumpReader,
    private readonly ps: number,
    private readonly compressors: PageCompressor[],
    private readonly accums: Accum[],
  ) {
    this.pages = new Uint8Array(SampleBatch.SIZE * ps);
    this.view = Buffer.from(this.pages.buffer);
    this.zero = Buffer.alloc(ps);
    this.out = allocBatch(SampleBatch.SIZE, ps);
  }

  async add(pfn: number, stratum: number): Promise<void> {
    this.pfns.push(pfn);
    this.strata.push(stratum);
    if (this.pfns.length === SampleBatch.SIZE) await this.flush();
  }

  async flush(): Promise<void> {
    const m = this.pfns.length;
    if (!m) return;
    const ps = this.ps;
    for (let k = 0; k < m; k++) await this.reader.readPages(this.pfns[k]!, 1, this.pages, k * ps);
    const isZero = this.pfns.map((_, k) => this.view.compare(this.zero, 0, ps, k * ps, (k + 1) * ps) === 0);
    this.compressors.forEach((comp, ci) => {
      comp.compress(this.pages, m, this.out);
      for (let k = 0; k < m; k++) {
        const a = this.accums[this.strata[k]!]!;
        const size = this.out.sizes[k]!;
        a.s0[ci]! += size;
        a.q0[ci]! += size * size;
        const s1 = isZero[k] ? 0 : size;
        a.s1[ci]! += s1;
        a.q1[ci]! += s1 * s1;
      }
    });
    for (let k = 0; k < m; k++) {
      const a = this.accums[this.strata[k]!]!;
      a.n++;
      if (isZero[k]) a.zero++;
    }
    this.pfns.length = 0;
    this.strata.length = 0;
  }
}
