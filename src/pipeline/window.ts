/**
 * The per-window decision of a dump level, as filter's passes make it:
 * the window scan (states, page properties) → the Decider (makedumpfile's
 * rules) → protection (content rules only) → the RAM oracle. A pure
 * function of the input, so the write pass recomputes exactly what the
 * plan pass decided.
 *
 * Protection and the oracle are steps with their own counters. Protection
 * comes before the oracle so that a page it keeps is asked about like any
 * other kept page; a status rule (offline, hwpoison, free, unaccepted, not
 * RAM) is never overridden.
 */
import type { RangeSet } from '../core/rangeset.js';
import { PfnState, type DumpReader } from '../formats/types.js';
import { Decider } from '../classify/decide.js';
import { isContentReason, isStatusReason, Reason, REASON_COUNT } from '../classify/reasons.js';
import type { PageFlagSource } from '../classify/flagsource.js';
import type { RamOracle } from '../ram/oracle.js';
import { runsOf, WINDOW, WindowScan, type ScanProgress, type ScanWindow } from './scan.js';

export { WINDOW } from './scan.js';

/** A scanned window with the reason of every pfn (HOLE throughout a window without RAM). */
export interface DecidedWindow extends ScanWindow {
  reasons: Uint8Array;
  /**
   * A replayed window's decisions as recorded: run-length coded, what the
   * write pass works from. `reasons` and `states` are then filled only if
   * the replay was asked for them (`replay(…, perPfn)`).
   */
  coded?: CodedRuns | undefined;
}

/** Runs of one reason, `codes[from..to)`, each `(length << 4) | reason`; neighbours differ in reason. */
export interface CodedRuns {
  codes: Uint32Array;
  from: number;
  to: number;
}

/** Protected pages: content rules overridden, status exclusions counted. */
export class ProtectStep {
  /** Protected pfns kept although a content rule would drop them, per reason. */
  readonly kept = new Float64Array(REASON_COUNT);
  /** Protected pfns a status rule excluded all the same, per reason. */
  readonly excluded = new Float64Array(REASON_COUNT);

  constructor(readonly set: RangeSet) {}

  reset(): void {
    this.kept.fill(0);
    this.excluded.fill(0);
  }

  /** Keep protected pages a content rule (cache, private cache, user) would drop. */
  keep(start: number, count: number, reasons: Uint8Array): void {
    for (const r of this.set.within(start, start + count)) {
      for (let p = r.start - start; p < r.end - start; p++) {
        const why = reasons[p]!;
        if (!isContentReason(why)) continue;
        this.kept[why]!++;
        reasons[p] = Reason.KEPT;
      }
    }
  }

  /** Count the protected pages status rules excluded (after the oracle). */
  count(start: number, count: number, reasons: Uint8Array): void {
    for (const r of this.set.within(start, start + count)) {
      for (let p = r.start - start; p < r.end - start; p++) {
        const why = reasons[p]!;
        if (isStatusReason(why)) this.excluded[why]!++;
      }
    }
  }
}

export interface OracleTally {
  /** Kernel-side calls the questions cost (callsFor). */
  calls: number;
  /** Pfns asked about. */
  pfnsAsked: number;
  /** Pfns answered "not RAM". */
  notRam: number;
}

/**
 * The kdump kernel's pfn_is_ram callbacks: asked about kept pages only
 * (a page the flags exclude is never asked about), turning unbacked ones
 * into NOT_RAM, with the calls that costs.
 */
export class OracleStep {
  readonly tally: OracleTally = { calls: 0, pfnsAsked: 0, notRam: 0 };
  /** Offline pages the oracle also calls not RAM (an audit: not counted as calls). */
  offlineNotRam = 0;

  constructor(readonly oracle: RamOracle) {}

  reset(): void {
    this.tally.calls = 0;
    this.tally.pfnsAsked = 0;
    this.tally.notRam = 0;
    this.offlineNotRam = 0;
  }

  apply(start: number, count: number, reasons: Uint8Array): void {
    for (const r of [Reason.KEPT, Reason.OFFLINE]) {
      for (const [i, j] of runsOf(reasons, count, r)) this.run(start, i, j, r, reasons);
    }
  }

  /** [i, j) is a run of one reason: walk it in oracle spans. */
  private run(start: number, i: number, j: number, r: number, reasons: Uint8Array): void {
    const oracle = this.oracle;
    for (let k = i; k < j; ) {
      const s = oracle.span(start + k, start + j);
      const n = Math.max(1, Math.min(s.count, j - k));
      if (r === Reason.KEPT) {
        this.tally.calls += oracle.callsFor ? oracle.callsFor(start + k, start + k + n) : n;
        this.tally.pfnsAsked += n;
        if (!s.ram) {
          reasons.fill(Reason.NOT_RAM, k, k + n);
          this.tally.notRam += n;
        }
      } else if (!s.ram) {
        this.offlineNotRam += n;
      }
      k += n;
    }
  }
}

/**
 * What reading every RAM page would cost, for the cost comparison: pages
 * with data, callback answers for them, and how many the oracle calls not
 * RAM (model look-ups, not counted as calls).
 */
export class ReadAudit {
  ramPages = 0;
  ramCalls = 0;
  ramNotRam = 0;

  constructor(private readonly oracle: RamOracle | undefined) {}

  add(start: number, count: number, states: Uint8Array): void {
    const oracle = this.oracle;
    for (const [i, j] of runsOf(states, count, PfnState.PRESENT)) {
      this.ramPages += j - i;
      if (!oracle) {
        this.ramCalls += j - i;
        continue;
      }
      this.ramCalls += oracle.callsFor ? oracle.callsFor(start + i, start + j) : j - i;
      for (let k = i; k < j; ) {
        const s = oracle.span(start + k, start + j);
        const n = Math.max(1, Math.min(s.count, j - k));
        if (!s.ram) this.ramNotRam += n;
        k += n;
      }
    }
  }
}

export class WindowClassifier {
  readonly scan: WindowScan;
  readonly decider: Decider;
  readonly protect: ProtectStep | undefined;
  readonly oracle: OracleStep | undefined;
  private readonly reasons = new Uint8Array(WINDOW);

  constructor(reader: DumpReader, flags: PageFlagSource | undefined, level: number, oracle: RamOracle | undefined, protect: RangeSet | undefined) {
    this.scan = new WindowScan(reader, flags);
    this.decider = new Decider(level, flags?.freeAreaLength);
    this.protect = protect ? new ProtectStep(protect) : undefined;
    this.oracle = oracle ? new OracleStep(oracle) : undefined;
  }

  get maxPfn(): number {
    return this.scan.maxPfn;
  }

  /**
   * One pass over the image: every window, decided. The counters start
   * over with each pass; `audit` (when given) sees every window with RAM.
   */
  async *windows(onProgress?: (p: ScanProgress) => void, audit?: ReadAudit): AsyncGenerator<DecidedWindow> {
    this.decider.reset();
    this.protect?.reset();
    this.oracle?.reset();
    const reasons = this.reasons;
    for await (const w of this.scan.windows(onProgress)) {
      const d = w as DecidedWindow;
      d.reasons = reasons;
      if (!w.ram) {
        // Holes never become exclusions, and a range carried across this
        // window still ends at the same pfn: nothing to decide.
        reasons.fill(Reason.HOLE, 0, w.count);
        yield d;
        continue;
      }
      this.decider.decide(w.states, w.props, w.start, w.count, reasons);
      audit?.add(w.start, w.count, w.states);
      this.protect?.keep(w.start, w.count, reasons);
      this.oracle?.apply(w.start, w.count, reasons);
      this.protect?.count(w.start, w.count, reasons);
      yield d;
    }
  }
}

/**
 * The reasons of every window of one pass, run-length coded (one u32 per
 * run: length << 4 | reason), so that a later pass can replay the
 * decisions instead of reading and decoding struct pages again. Bounded:
 * once the runs would take more than `budget` bytes, everything recorded
 * is dropped and `complete` stays false (the later pass then classifies
 * again). A window of `WINDOW` pfns of one reason takes 4 bytes; a guest
 * of 2 GiB at -d 31 about 17 KiB.
 */
export class ReasonRuns {
  private runs = new Uint32Array(0);
  private used = 0;
  /** Per window: start pfn, count and end index in `runs`. */
  private readonly windows: number[] = [];
  private overflow = false;
  private sealed = false;
  private readonly reasons = new Uint8Array(WINDOW);
  private readonly states = new Uint8Array(WINDOW);

  constructor(private readonly budget: number) {}

  /** Bytes held. */
  get bytes(): number {
    return this.runs.byteLength + this.windows.length * 8;
  }

  /** True once every window of the pass is recorded (after seal()). */
  get complete(): boolean {
    return this.sealed && !this.overflow;
  }

  /** Record the reasons of window [start, start+count); windows in ascending order. */
  record(start: number, count: number, reasons: Uint8Array): void {
    if (this.overflow) return;
    for (let i = 0; i < count; ) {
      const r = reasons[i]!;
      let j = i + 1;
      while (j < count && reasons[j] === r) j++;
      if (this.used === this.runs.length && !this.grow()) return;
      this.runs[this.used++] = ((j - i) << 4) | r;
      i = j;
    }
    this.windows.push(start, count, this.used);
  }

  /** The pass is over: replay() may run. */
  seal(): void {
    this.sealed = true;
  }

  private grow(): boolean {
    const next = Math.max(1024, this.runs.length * 2);
    if (next * 4 + this.windows.length * 8 > this.budget) {
      this.overflow = true;
      this.runs = new Uint32Array(0);
      this.windows.length = 0;
      return false;
    }
    const bigger = new Uint32Array(next);
    bigger.set(this.runs);
    this.runs = bigger;
    return true;
  }

  /**
   * The recorded windows again, as the classifier yielded them (reasons,
   * and the states they imply: a hole is HOLE, RAM without data ABSENT,
   * the rest PRESENT), without page properties, each with its runs
   * (`coded`). `perPfn` false: reasons and states are left unfilled, for
   * a caller that works from the runs. Buffers are reused.
   */
  *replay(onProgress?: (p: ScanProgress) => void, perPfn = true): Generator<DecidedWindow> {
    if (!this.complete) throw new Error('ReasonRuns: replay of an incomplete pass');
    const { reasons, states, runs, windows } = this;
    const coded: CodedRuns = { codes: runs, from: 0, to: 0 };
    const win: DecidedWindow = { start: 0, count: 0, states, ram: false, props: null, reasons, coded };
    let total = 0;
    for (let k = 0; k < windows.length; k += 3) total = windows[k]! + windows[k + 1]!;
    let from = 0;
    for (let k = 0; k < windows.length; k += 3) {
      const start = windows[k]!;
      const count = windows[k + 1]!;
      const end = windows[k + 2]!;
      onProgress?.({ done: start, total });
      let i = 0;
      let ram = false;
      for (let q = from; q < end; q++) {
        const v = runs[q]!;
        const r = v & 15;
        const n = v >>> 4;
        if (r !== Reason.HOLE) ram = true;
        if (!perPfn) continue;
        const st = r === Reason.HOLE ? PfnState.HOLE : r === Reason.ABSENT ? PfnState.ABSENT : PfnState.PRESENT;
        if (n < 64) {
          // Short runs (most of a fragmented guest's): a loop costs less than two fill() calls.
          for (let k = i; k < i + n; k++) {
            reasons[k] = r;
            states[k] = st;
          }
        } else {
          reasons.fill(r, i, i + n);
          states.fill(st, i, i + n);
        }
        i += n;
      }
      coded.from = from;
      coded.to = end;
      from = end;
      win.start = start;
      win.count = count;
      win.ram = ram;
      yield win;
    }
    onProgress?.({ done: total, total });
  }
}
