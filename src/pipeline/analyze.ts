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
import { UsageError } from '../core/errors.js';
import { PfnState, type Codec, type DumpReader } from '../formats/types.js';
import { ALL_CODECS, PageCompressor, allocBatch } from '../formats/kdump/codecs/index.js';
import { Decider } from '../classify/decide.js';
import { isContentReason, Reason } from '../classify/reasons.js';
import type { FlagSourceDescription, PageFlagSource } from '../classify/flagsource.js';
import { Prop, PropWindow } from '../kernel/props.js';
import type { RamOracle } from '../ram/oracle.js';
import { chooseFlagSource, protectionReport, type ProtectionReport } from './filter.js';
import { protection } from './protect.js';
import { openPipelineInput, type PipelineInput } from './open.js';
import type { ByteSource } from '../io/source.js';
import { WINDOW } from './scan.js';
import { anyRam, kernelStates, markNotRam } from './scan.js';
import { DEFAULT_COSTS, type CostParams, type StrategyCost, costStrategies } from './cost.js';

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
  onProgress?: ((p: { phase: string; done: number; total: number }) => void) | undefined;
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

/** A uniform 32-bit hash of (seed, pfn): the deterministic sample choice. */
function sampleHash(seed: number, pfn: number): number {
  const hi = Math.floor(pfn / 0x1_0000_0000);
  return fmix32((pfn >>> 0) ^ fmix32(seed ^ Math.imul(hi + 1, 0x9e3779b9)));
}

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
  const t0 = performance.now();
  const costLevel = opts.costLevel ?? 31;
  if (!Number.isInteger(costLevel) || costLevel < 0 || costLevel > 31) throw new UsageError(`dump level ${costLevel} is not in 0..31`);
  const sampleTarget = opts.sample ?? 16384;
  if (!Number.isInteger(sampleTarget) || sampleTarget < 0) throw new UsageError(`sample size ${sampleTarget} is not a whole number`);
  const seed = opts.seed ?? 1;
  const reader = await openPipelineInput(opts.input, opts.wrapSource);
  let flags: PageFlagSource | undefined;
  try {
    flags = await chooseFlagSource(reader, 30, opts.flagsTable).catch(async (err: unknown) => {
      // Without struct page data analysis still reports holes and zero pages.
      const f = await chooseFlagSource(reader, 1, opts.flagsTable).catch(() => undefined);
      if (f) return f;
      if (reader.info.vmcoreinfo === undefined && !opts.flagsTable) return undefined;
      throw err;
    });
    const prot = await protection(reader, flags, opts.protect);
    const report = await run(reader, flags, prot.set, opts, costLevel, sampleTarget, seed, t0);
    return { ...report, protection: protectionReport(prot) };
  } finally {
    await flags?.close();
    await reader.close();
  }
}

async function run(
  reader: DumpReader,
  flags: PageFlagSource | undefined,
  protect: RangeSet | undefined,
  opts: AnalyzeOptions,
  costLevel: number,
  sampleTarget: number,
  seed: number,
  t0: number,
): Promise<Omit<AnalyzeReport, 'protection'>> {
  const info = reader.info;
  // As filter: the output ends where the kernel's memmap ends.
  const maxPfn = Math.min(info.maxPfn, flags?.pfnLimit ?? Infinity);
  const ps = info.pageSize;
  const oracle = opts.oracle;
  const states = new Uint8Array(WINDOW);
  const win = new PropWindow(WINDOW);
  const classDecider = new Decider(30, flags?.freeAreaLength);
  const combos = Array.from({ length: 16 }, (_, c) => new Decider(c << 1, flags?.freeAreaLength));
  const classOut = new Uint8Array(WINDOW);
  const comboOut = new Uint8Array(WINDOW);
  const aclass = new Uint8Array(WINDOW);
  const notRam = new Uint8Array(WINDOW);

  const classPages = new Float64Array(ACLASS_COUNT);
  /** Pages per sampling stratum. */
  const stratumPages = new Float64Array(STRATA);
  const sclass = new Uint8Array(WINDOW);
  const keptBy = new Float64Array(16 * STRATA);
  const runsBy = new Float64Array(16);
  const runEnd = new Float64Array(16).fill(-1);
  const flagKeptBy = new Float64Array(16);
  const flagKeptCalls = new Float64Array(16);
  const flagKeptNotRam = new Float64Array(16);
  let offlineAlsoNotRam = 0;
  let ramCalls = 0;
  let ramNotRam = 0;

  const cellHist = new Uint32Array(MAP_CELLS * ACLASS_COUNT);
  const mapWindows: Array<{ start: number; cells: number[] }> = [];

  /** Classify a window into aclass[] / notRam[]; returns false for an all-hole window. */
  const classifyWindow = async (w: number, n: number, withCombos: boolean): Promise<boolean> => {
    await kernelStates(reader, flags?.pfnLimit, w, n, states);
    if (!anyRam(states, n)) {
      // Nothing to decide in a window of holes (see WindowClassifier).
      aclass.fill(AClass.HOLE, 0, n);
      return false;
    }
    let pw: PropWindow | null = null;
    if (flags) {
      win.reset(w, n);
      await flags.fill(win);
      pw = win;
    }
    classDecider.decide(states, pw, w, n, classOut);
    notRam.fill(0, 0, n);
    for (let i = 0; i < n; i++) {
      const r = classOut[i]!;
      const p = pw ? pw.props[i]! : 0;
      let c: number;
      switch (r) {
        case Reason.HOLE: c = AClass.HOLE; break;
        case Reason.ABSENT: c = AClass.ABSENT; break;
        case Reason.CACHE: c = AClass.CACHE; break;
        case Reason.CACHE_PRIVATE: c = AClass.CACHE_PRIVATE; break;
        case Reason.USER: c = AClass.USER; break;
        case Reason.FREE: c = AClass.FREE; break;
        case Reason.UNACCEPTED: c = AClass.UNACCEPTED; break;
        case Reason.HWPOISON: c = AClass.HWPOISON; break;
        case Reason.OFFLINE: c = p & Prop.OFFLINE_FALLBACK ? AClass.OFFLINE_FALLBACK : AClass.OFFLINE; break;
        default: c = p & Prop.DEVICE ? AClass.DEVICE : AClass.KERNEL;
      }
      aclass[i] = c;
    }
    if (oracle) {
      // Uncounted model look-ups: the cost table counts questions per strategy.
      markNotRam(oracle, w, n, states, notRam);
      for (let i = 0; i < n; i++) {
        if (!notRam[i]) continue;
        const c = aclass[i]!;
        if (c === AClass.OFFLINE || c === AClass.OFFLINE_FALLBACK) {
          if (withCombos) offlineAlsoNotRam++; // counted in the first pass only
        }
        else if (c === AClass.KERNEL) aclass[i] = AClass.NOT_RAM;
      }
    }
    sclass.set(aclass.subarray(0, n));
    if (protect) {
      for (const r of protect.within(w, w + n)) {
        for (let i = r.start - w; i < r.end - w; i++) if (PROTECTABLE.includes(aclass[i]!)) sclass[i] = PROTECTED;
      }
    }
    if (withCombos) {
      for (let c = 0; c < 16; c++) {
        combos[c]!.decide(states, pw, w, n, comboOut);
        if (protect) {
          // Protection overrides content rules only; status rules stand.
          for (const r of protect.within(w, w + n)) {
            for (let i = r.start - w; i < r.end - w; i++) if (isContentReason(comboOut[i]!)) comboOut[i] = Reason.KEPT;
          }
        }
        const base = c * STRATA;
        for (let i = 0; i < n; ) {
          if (comboOut[i] !== Reason.KEPT) {
            i++;
            continue;
          }
          let j = i + 1;
          while (j < n && comboOut[j] === Reason.KEPT) j++;
          flagKeptBy[c]! += j - i;
          flagKeptCalls[c]! += oracle ? (oracle.callsFor ? oracle.callsFor(w + i, w + j) : j - i) : 0;
          for (let k = i; k < j; k++) {
            if (notRam[k]) {
              flagKeptNotRam[c]!++;
              continue;
            }
            keptBy[base + sclass[k]!]!++;
            const pfn = w + k;
            if (pfn !== runEnd[c]) runsBy[c]!++;
            runEnd[c] = pfn + 1;
          }
          i = j;
        }
      }
    }
    return true;
  };

  // ---- pass 1: classes, per-level kept counts, map, cost ----
  for (let w = 0; w < maxPfn; w += WINDOW) {
    const n = Math.min(WINDOW, maxPfn - w);
    opts.onProgress?.({ phase: 'classify', done: w, total: maxPfn });
    const any = await classifyWindow(w, n, true);
    if (any && oracle) {
      for (let i = 0; i < n; ) {
        const c = aclass[i]!;
        if (c === AClass.HOLE || c === AClass.ABSENT) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < n && aclass[j] !== AClass.HOLE && aclass[j] !== AClass.ABSENT) j++;
        ramCalls += oracle.callsFor ? oracle.callsFor(w + i, w + j) : j - i;
        i = j;
      }
    }
    if (any) cellHist.fill(0);
    for (let i = 0; i < n; i++) {
      const c = aclass[i]!;
      classPages[c]!++;
      stratumPages[sclass[i]!]!++;
      if (any) {
        if (notRam[i] && c !== AClass.ABSENT) ramNotRam++;
        cellHist[Math.floor(i / MAP_CELL_PFNS) * ACLASS_COUNT + c]!++;
      }
    }
    if (any) mapWindows.push({ start: w, cells: dominantCells(cellHist) });
  }

  // ---- pass 2: sample content of keepable pages ----
  const population = SAMPLED.reduce((s, c) => s + stratumPages[c]!, 0);
  const strata = SAMPLED.filter((c) => stratumPages[c]! > 0).length;
  const threshold = new Float64Array(STRATA);
  for (const c of SAMPLED) {
    const n = stratumPages[c]!;
    if (n === 0) continue;
    // Half the budget in proportion to class size, half shared equally:
    // small classes (often all that a high dump level keeps) still get
    // enough pages for a tight estimate.
    const share = (sampleTarget / 2) * (n / Math.max(1, population)) + sampleTarget / 2 / strata;
    const want = sampleTarget === 0 ? n : Math.min(n, Math.max(64, Math.round(share)));
    threshold[c] = want >= n ? 2 ** 32 : (want / n) * 2 ** 32;
  }
  const codecs = ALL_CODECS;
  const accums: Accum[] = Array.from({ length: STRATA }, () => ({
    n: 0,
    zero: 0,
    s0: new Float64Array(codecs.length),
    q0: new Float64Array(codecs.length),
    s1: new Float64Array(codecs.length),
    q1: new Float64Array(codecs.length),
  }));
  const compressors = await Promise.all(codecs.map((k) => PageCompressor.create(k, ps)));
  const SB = 64;
  const pageBuf = new Uint8Array(SB * ps);
  const batch = allocBatch(SB, ps);
  const zeroPage = Buffer.alloc(ps);
  const pageView = Buffer.from(pageBuf.buffer);
  const pendingPfn: number[] = [];
  const pendingClass: number[] = [];
  const flushSample = async (): Promise<void> => {
    const m = pendingPfn.length;
    if (!m) return;
    for (let k = 0; k < m; k++) await reader.readPages(pendingPfn[k]!, 1, pageBuf, k * ps);
    const isZero = pendingPfn.map((_, k) => pageView.compare(zeroPage, 0, ps, k * ps, (k + 1) * ps) === 0);
    for (let ci = 0; ci < codecs.length; ci++) {
      compressors[ci]!.compress(pageBuf, m, batch);
      for (let k = 0; k < m; k++) {
        const a = accums[pendingClass[k]!]!;
        const size = batch.sizes[k]!;
        a.s0[ci]! += size;
        a.q0[ci]! += size * size;
        const s1 = isZero[k] ? 0 : size;
        a.s1[ci]! += s1;
        a.q1[ci]! += s1 * s1;
      }
    }
    for (let k = 0; k < m; k++) {
      const a = accums[pendingClass[k]!]!;
      a.n++;
      if (isZero[k]) a.zero++;
    }
    pendingPfn.length = 0;
    pendingClass.length = 0;
  };
  classDecider.reset();
  if (population > 0) {
    for (let w = 0; w < maxPfn; w += WINDOW) {
      const n = Math.min(WINDOW, maxPfn - w);
      opts.onProgress?.({ phase: 'sample', done: w, total: maxPfn });
      if (!(await classifyWindow(w, n, false))) continue;
      for (let i = 0; i < n; i++) {
        const c = sclass[i]!;
        const t = threshold[c]!;
        // Never read a page the oracle calls not RAM, whatever its class.
        if (t === 0 || states[i] !== PfnState.PRESENT || notRam[i]) continue;
        if (t < 2 ** 32 && sampleHash(seed, w + i) >= t) continue;
        pendingPfn.push(w + i);
        pendingClass.push(c);
        if (pendingPfn.length === SB) await flushSample();
      }
    }
    await flushSample();
  }

  // ---- predictions ----
  const notesLen = info.notes.length;
  const bitmapBlocks = 2 * Math.ceil(Math.ceil(maxPfn / 8) / ps);
  const subHdrBlocks = Math.ceil((104 + notesLen) / ps);
  const kdumpMeta = (kept: number): number => (1 + subHdrBlocks + bitmapBlocks) * ps + kept * 24;
  const predictions: LevelPrediction[] = [];
  for (let level = 0; level < 32; level++) {
    const c = level >> 1;
    const zeroBit = (level & 1) === 1;
    let kept = 0;
    let zeros = 0;
    /** Zero pages of protected ranges: ELF output keeps them. */
    let protectedZeros = 0;
    const mean = new Float64Array(codecs.length);
    const variance = new Float64Array(codecs.length);
    for (let k = 0; k < STRATA; k++) {
      const nk = keptBy[c * STRATA + k]!;
      if (!nk) continue;
      kept += nk;
      const a = accums[k]!;
      if (a.n === 0) {
        // Not sampled (no present pages): count as incompressible, non-zero.
        for (let ci = 0; ci < codecs.length; ci++) mean[ci]! += nk * ps;
        continue;
      }
      const zfrac = a.zero / a.n;
      zeros += nk * zfrac;
      if (k === PROTECTED) protectedZeros = nk * zfrac;
      const total = stratumPages[k]!;
      const fpc = total > 1 ? Math.max(0, (total - a.n) / (total - 1)) : 0;
      for (let ci = 0; ci < codecs.length; ci++) {
        const s = zeroBit ? a.s1[ci]! : a.s0[ci]!;
        const q = zeroBit ? a.q1[ci]! : a.q0[ci]!;
        const m = s / a.n;
        const sd2 = a.n > 1 ? Math.max(0, (q - a.n * m * m) / (a.n - 1)) : 0;
        mean[ci]! += nk * m;
        variance[ci]! += nk * nk * (sd2 / a.n) * fpc;
      }
    }
    const sharedZero = zeroBit && zeros > 0 ? ps : 0;
    const kdump = {} as Record<Codec, SizePrediction>;
    codecs.forEach((k, ci) => {
      kdump[k] = { bytes: Math.round(kdumpMeta(kept) + mean[ci]! + sharedZero), error: Math.round(1.96 * Math.sqrt(variance[ci]!)) };
    });
    // ELF: page data (zero pages dropped at odd levels), headers, notes.
    // Dropped zero pages split segments: from none (all at the ends of
    // kept runs) to one each (all apart). The sample cannot tell which, so
    // the estimate takes the middle and the error covers both ends.
    const droppedZeros = zeroBit ? Math.max(0, zeros - protectedZeros) : 0;
    const nonzeroKept = kept - droppedZeros;
    const runs = runsBy[c]! + droppedZeros / 2;
    const phdrBytes = 64 + (1 + runs) * 56 + notesLen;
    const elfBytes = Math.ceil(phdrBytes / ps) * ps + nonzeroKept * ps;
    const runsError = droppedZeros > 0 ? Math.ceil((phdrBytes + (droppedZeros / 2) * 56) / ps) * ps - Math.ceil(phdrBytes / ps) * ps + ps : 0;
    let zeroVar = 0;
    if (zeroBit) {
      for (let k = 0; k < STRATA; k++) {
        const nk = keptBy[c * STRATA + k]!;
        const a = accums[k]!;
        if (!nk || a.n < 2 || k === PROTECTED) continue;
        const p = a.zero / a.n;
        const total = stratumPages[k]!;
        const fpc = total > 1 ? Math.max(0, (total - a.n) / (total - 1)) : 0;
        zeroVar += nk * nk * ((p * (1 - p)) / a.n) * fpc;
      }
    }
    predictions.push({
      level,
      keptPages: kept,
      zeroPages: Math.round(zeros),
      kdump,
      elf: { bytes: Math.round(elfBytes), error: Math.round(1.96 * Math.sqrt(zeroVar) * ps + runsError) },
    });
  }

  const classes = {} as Record<AClassName, ClassStat>;
  ACLASS_NAMES.forEach((name, k) => {
    const a = accums[k]!;
    const stat: ClassStat = { pages: classPages[k]!, bytes: classPages[k]! * ps };
    if (SAMPLED.includes(k) && a.n > 0) {
      stat.sampled = a.n;
      stat.zeroPages = Math.round((classPages[k]! * a.zero) / a.n);
    }
    classes[name] = stat;
  });
  const ramPages = maxPfn - classPages[AClass.HOLE]!;
  const params: CostParams = { ...DEFAULT_COSTS, ...opts.costs };
  const cl = costLevel >> 1;
  const strategies = costStrategies(params, {
    ramPages: ramPages - classPages[AClass.ABSENT]!,
    notRam: ramNotRam,
    ramCalls: oracle ? ramCalls : ramPages - classPages[AClass.ABSENT]!,
    flagKept: flagKeptBy[cl]!,
    flagKeptNotRam: flagKeptNotRam[cl]!,
    flagKeptCalls: oracle ? flagKeptCalls[cl]! : flagKeptBy[cl]!,
    hasOracle: !!oracle,
    pageSize: ps,
  });
  const sampled = accums.reduce((s, a) => s + a.n, 0);
  return {
    input: { file: info.file, format: info.format, bytes: info.fileSize, pageSize: ps, maxPfn, osrelease: info.vmcoreinfo?.osrelease },
    classification: { source: flags ? flags.kind : 'none', description: flags?.describe(), warnings: Object.fromEntries(flags?.warnings ?? []) },
    classes,
    offlineAlsoNotRam,
    ramPages,
    predictions,
    sample: {
      pages: sampled,
      requested: sampleTarget,
      seed,
      confidence: 0.95,
      note: 'sizes are estimated per class from sampled pages; the error is the half-width of a 95 % interval (normal approximation with finite-population correction)',
    },
    oracle: oracle ? { name: oracle.name } : undefined,
    cost: { level: costLevel, params, strategies },
    map: { windowPfns: WINDOW, cellPfns: MAP_CELL_PFNS, windows: mapWindows },
    seconds: (performance.now() - t0) / 1000,
  };
}
