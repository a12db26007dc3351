/**
 * The per-window classification shared by every pipeline (filter, analyze,
 * validate): input states → page properties → dump-level reasons →
 * protected ranges (content rules only) → RAM oracle. Pure function of the
 * input, so a second pass recomputes exactly what the first decided.
 *
 * Protection comes before the oracle so that a page it keeps is asked
 * about like any other kept page; a status rule (offline, hwpoison, free,
 * unaccepted, not RAM) is never overridden.
 */
import type { RangeSet } from '../core/rangeset.js';
import { PfnState, type DumpReader } from '../formats/types.js';
import { PropWindow } from '../kernel/props.js';
import { Decider } from '../classify/decide.js';
import { isContentReason, isStatusReason, Reason, REASON_COUNT } from '../classify/reasons.js';
import type { PageFlagSource } from '../classify/flagsource.js';
import type { RamOracle } from '../ram/oracle.js';
import { anyRam, kernelStates } from './scan.js';

/** Pfns per window: a 128 MiB section of 4 KiB pages; a multiple of 8 and of 512. */
export const WINDOW = 32768;

export interface OracleTally {
  /** Kernel-side calls the questions cost (callsFor), in the planning pass. */
  calls: number;
  /** Pfns asked about. */
  pfnsAsked: number;
  /** Pfns answered "not RAM". */
  notRam: number;
}

export class WindowClassifier {
  readonly states: Uint8Array;
  readonly reasons: Uint8Array;
  readonly win: PropWindow;
  readonly decider: Decider;
  /** Protected pfns kept although a content rule would drop them, per reason. */
  readonly protectedOverrides = new Float64Array(REASON_COUNT);
  /** Protected pfns excluded anyway by a status rule, per reason. */
  readonly protectedExcluded = new Float64Array(REASON_COUNT);
  readonly oracleTally: OracleTally = { calls: 0, pfnsAsked: 0, notRam: 0 };
  /** Offline pages the oracle also calls not RAM (audit, not counted as calls). */
  offlineNotRam = 0;
  /**
   * With `auditing` on, what reading every RAM page would cost, for the
   * cost comparison: pages with data, callback answers for them, and how
   * many the oracle calls not RAM (model look-ups, not counted as calls).
   */
  auditing = false;
  readonly audit = { ramPages: 0, ramCalls: 0, ramNotRam: 0 };

  constructor(
    private readonly reader: DumpReader,
    private readonly flags: PageFlagSource | undefined,
    level: number,
    private readonly oracle: RamOracle | undefined,
    private readonly protect: RangeSet | undefined,
  ) {
    this.states = new Uint8Array(WINDOW);
    this.reasons = new Uint8Array(WINDOW);
    this.win = new PropWindow(WINDOW);
    this.decider = new Decider(level, flags?.freeAreaLength);
  }

  /** Start a new pass over the image. */
  reset(): void {
    this.decider.reset();
    this.protectedOverrides.fill(0);
    this.protectedExcluded.fill(0);
    this.oracleTally.calls = 0;
    this.oracleTally.pfnsAsked = 0;
    this.oracleTally.notRam = 0;
    this.offlineNotRam = 0;
    this.audit.ramPages = 0;
    this.audit.ramCalls = 0;
    this.audit.ramNotRam = 0;
  }

  /**
   * Classify [start, start+count). Returns false (and leaves reasons all
   * HOLE) when the window holds no RAM at all.
   */
  async classify(start: number, count: number): Promise<boolean> {
    const { states, reasons } = this;
    await kernelStates(this.reader, this.flags?.pfnLimit, start, count, states);
    if (!anyRam(states, count)) {
      // Holes never become exclusions, and a range carried across this
      // window still ends at the same pfn: nothing to decide.
      reasons.fill(Reason.HOLE, 0, count);
      return false;
    }
    let win: PropWindow | null = null;
    if (this.flags) {
      this.win.reset(start, count);
      await this.flags.fill(this.win);
      win = this.win;
    }
    this.decider.decide(states, win, start, count, reasons);
    if (this.auditing) this.auditRam(start, count);
    if (this.protect) this.applyProtect(start, count);
    if (this.oracle) this.applyOracle(start, count);
    if (this.protect) this.countProtectedExcluded(start, count);
    return true;
  }

  /** Ask the oracle about kept pages only (flag exclusions are never asked about). */
  private applyOracle(start: number, count: number): void {
    const oracle = this.oracle!;
    const reasons = this.reasons;
    let i = 0;
    while (i < count) {
      const r = reasons[i];
      if (r !== Reason.KEPT && r !== Reason.OFFLINE) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < count && reasons[j] === r) j++;
      // [i, j) is a run of one reason; walk it in oracle spans.
      let k = i;
      while (k < j) {
        const s = oracle.span(start + k, start + j);
        const n = Math.max(1, Math.min(s.count, j - k));
        if (r === Reason.KEPT) {
          this.oracleTally.calls += oracle.callsFor ? oracle.callsFor(start + k, start + k + n) : n;
          this.oracleTally.pfnsAsked += n;
          if (!s.ram) {
            reasons.fill(Reason.NOT_RAM, k, k + n);
            this.oracleTally.notRam += n;
          }
        } else if (!s.ram) {
          this.offlineNotRam += n;
        }
        k += n;
      }
      i = j;
    }
  }

  private auditRam(start: number, count: number): void {
    const states = this.states;
    const oracle = this.oracle;
    for (let i = 0; i < count; ) {
      if (states[i] !== PfnState.PRESENT) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < count && states[j] === PfnState.PRESENT) j++;
      this.audit.ramPages += j - i;
      if (oracle) {
        this.audit.ramCalls += oracle.callsFor ? oracle.callsFor(start + i, start + j) : j - i;
        for (let k = i; k < j; ) {
          const s = oracle.span(start + k, start + j);
          const n = Math.max(1, Math.min(s.count, j - k));
          if (!s.ram) this.audit.ramNotRam += n;
          k += n;
        }
      } else this.audit.ramCalls += j - i;
      i = j;
    }
  }

  /** Keep protected pages that a content rule (cache, private cache, user) would drop. */
  private applyProtect(start: number, count: number): void {
    const reasons = this.reasons;
    for (const r of this.protect!.within(start, start + count)) {
      for (let p = r.start - start; p < r.end - start; p++) {
        const why = reasons[p]!;
        if (isContentReason(why)) {
          this.protectedOverrides[why]!++;
          reasons[p] = Reason.KEPT;
        }
      }
    }
  }

  /** Protected pages a status rule excludes all the same, per reason (after the oracle). */
  private countProtectedExcluded(start: number, count: number): void {
    const reasons = this.reasons;
    for (const r of this.protect!.within(start, start + count)) {
      for (let p = r.start - start; p < r.end - start; p++) {
        const why = reasons[p]!;
        if (isStatusReason(why)) this.protectedExcluded[why]!++;
      }
    }
  }
}
