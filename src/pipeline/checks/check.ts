/**
 * A validate check: a module with a stable id, what it needs from the
 * run's inputs, its severity and why it matters, and a scanner made per
 * run that sees every window with RAM and gives its count and offending
 * ranges at the end. The windows (CheckWindow) carry what every check
 * shares: states, page properties, the dump-level decisions and the RAM
 * oracle's answers, computed once per window by validateDump().
 */
import { RangeSetBuilder, type RangeSet } from '../../core/rangeset.js';
import type { DumpReader } from '../../formats/types.js';
import type { MemMapFlagSource } from '../../classify/flagsource.js';
import type { RamOracle } from '../../ram/oracle.js';
import type { VirtioMemModel } from '../../ram/models.js';
import type { KexecSegment } from '../../formats/kexec-segments.js';
import type { KpfTable } from '../flags.js';

export type Severity = 'error' | 'warning' | 'info';

export type CheckId =
  | 'offline-backed'
  | 'unbacked-unflagged'
  | 'xen-pv-p2m'
  | 'virtio-mem'
  | 'kpageflags-memmap'
  | 'kexec-overlap'
  | 'device-in-dump'
  | 'content-not-ram'
  | 'type-overlap'
  | 'protected-excluded'
  | 'offline-total';

/** What a run has: the image and every side input. */
export interface CheckInputs {
  reader: DumpReader;
  /** struct page, when VMCOREINFO makes it usable. */
  memmap: MemMapFlagSource | undefined;
  oracle: RamOracle | undefined;
  /** The Xen PV and virtio-mem models inside the oracle chain, if any. */
  xenPv: RamOracle | undefined;
  virtioMem: VirtioMemModel | undefined;
  kpageflags: KpfTable | undefined;
  kexecSegments: readonly KexecSegment[] | undefined;
  /** Protected pfns (kernel image, kernel log, --protect). */
  protect: RangeSet | undefined;
  balloonPages: number | undefined;
  readUnbacked: boolean;
  /** Ranges listed per finding. */
  maxRanges: number;
}

/** One window of pfns with RAM, as every check sees it. */
export interface CheckWindow {
  start: number;
  count: number;
  /** PfnState per pfn. */
  states: Uint8Array;
  /** Page properties (Prop bits), or null without struct page. */
  props: Uint16Array | null;
  /** -d 31 decision with every RAM pfn taken as present (what a filter of the full image decides). */
  r31: Uint8Array;
  /** -d 16 decision over the input as it is (free pages). */
  r16: Uint8Array;
  /** 1 where the oracle says not RAM (all zero without an oracle). */
  notRam: Uint8Array;
  /** 1 where the Xen PV P2M is invalid / virtio-mem is unplugged (all zero without those models). */
  p2mInvalid: Uint8Array;
  unplugged: Uint8Array;
  isOffline(i: number): boolean;
  isDevice(i: number): boolean;
}

/** What a check found in a run. */
export interface CheckResult {
  count: number;
  ranges: Array<[number, number]>;
  moreRanges: number;
  detail?: string | undefined;
  /** Lines for the report's notes (what was tolerated, counted, or seen). */
  notes?: string[] | undefined;
}

export interface CheckScanner {
  scan?(w: CheckWindow): void | Promise<void>;
  finish(): CheckResult;
}

export interface Check {
  readonly id: CheckId;
  readonly title: string;
  readonly severity: Severity;
  readonly why: string;
  /** What the run lacks for this check (the reason it does not run), or undefined. */
  needs(inputs: CheckInputs): string | undefined;
  start(inputs: CheckInputs): CheckScanner;
}

export const NEED_ORACLE = 'needs --ram-oracle';
export const NEED_MEMMAP = 'needs struct page (VMCOREINFO)';

/** Offending pfns, counted, with the first ranges listed. */
export class Tally {
  count = 0;
  private ranges = new RangeSetBuilder();
  private listed = 0;
  private lastEnd = -1;
  extra = 0;
  constructor(private readonly max: number) {}

  add(start: number, end: number): void {
    this.count += end - start;
    if (start === this.lastEnd && this.listed > 0 && this.listed <= this.max) {
      this.ranges.add(start, end);
    } else if (this.listed < this.max) {
      this.ranges.add(start, end);
      this.listed++;
    } else this.extra++;
    this.lastEnd = end;
  }

  /** Add the pfns base+i where mask[i] is set, as runs. */
  addMask(base: number, mask: Uint8Array, n: number): void {
    for (let i = 0; i < n; ) {
      if (!mask[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && mask[j]) j++;
      this.add(base + i, base + j);
      i = j;
    }
  }

  /** Add the pfns of window w where pred(i) holds. */
  addWhere(w: CheckWindow, pred: (i: number) => boolean): void {
    for (let i = 0; i < w.count; ) {
      if (!pred(i)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < w.count && pred(j)) j++;
      this.add(w.start + i, w.start + j);
      i = j;
    }
  }

  /** Add the pfns of window w inside `set` where pred(i) holds. */
  addWithin(set: RangeSet, w: CheckWindow, pred: (i: number) => boolean): void {
    for (const r of set.within(w.start, w.start + w.count)) {
      for (let i = r.start - w.start; i < r.end - w.start; ) {
        if (!pred(i)) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < r.end - w.start && pred(j)) j++;
        this.add(w.start + i, w.start + j);
        i = j;
      }
    }
  }

  list(): Array<[number, number]> {
    return this.ranges.build().toJSON();
  }

  result(detail?: string, notes?: string[]): CheckResult {
    return { count: this.count, ranges: this.list(), moreRanges: this.extra, detail, notes };
  }
}

/** A scanner that tallies, per window, the pfns a predicate picks. */
export function tallying(inputs: CheckInputs, pick: (w: CheckWindow, i: number) => boolean): CheckScanner {
  const t = new Tally(inputs.maxRanges);
  return {
    scan: (w) => t.addWhere(w, (i) => pick(w, i)),
    finish: () => t.result(),
  };
}
