/**
 * Filling RAM with a realistic mix of page classes: a sequence of runs
 * whose classes are drawn by weight and whose lengths are log-uniform
 * within per-class bounds (many short runs, a few long ones). Compound
 * classes (THP, hugetlb) and 2 MiB balloon pages start on 512-pfn
 * boundaries and last a multiple of 512 pfns; the generator pads with a
 * short run of another class to reach the boundary.
 */
import type { Rng } from './rng.js';
import { HUGE_PAGES, sameFields, type PlanRun, type RunFields } from './plan.js';

export interface MixEntry {
  fields: RunFields;
  /** Share of the region's pages this entry should take (before position scaling). */
  share: number;
  min: number;
  max: number;
  /** Start on a 512-pfn boundary and last a multiple of 512 pfns. */
  aligned?: boolean;
  /** Multiplier of the entry's weight at a position (0..1 of the way through the guest's RAM). */
  at?: (where: number) => number;
}

export interface MixProfile {
  name: string;
  entries: MixEntry[];
}

/** Expected length of Rng.logLength(min, max). */
function meanLength(min: number, max: number): number {
  if (max <= min) return min;
  return (max + 1 - min) / (Math.log(max + 1) - Math.log(min));
}

/**
 * Runs tiling [start, end). Each run's class is drawn by lottery, weighted
 * by the entry's share of pages over its expected run length; every entry
 * accrues its share of each emitted page, and the weights lean towards the
 * entries furthest behind their share, so that even a small region gets
 * every class in about its proportion while lengths and order stay random.
 * `lengthScale` stretches the longest runs of each class (for big guests).
 * `where(pfn)` tells how far through the guest's RAM a pfn is (for
 * position-dependent shares); `filler` closes a region no entry fits.
 */
export function generateMix(
  profile: MixProfile,
  start: number,
  end: number,
  rng: Rng,
  where: (pfn: number) => number,
  filler: RunFields,
  lengthScale = 1,
): PlanRun[] {
  return new MixGenerator(profile, rng, filler, lengthScale).generate(start, end, where);
}

/** The bookkeeping of generateMix: per entry, pages placed, pages owed, the current share and lottery weight. */
class MixGenerator {
  private readonly out: PlanRun[] = [];
  private readonly entries: MixEntry[];
  /** Expected run length of each entry. */
  private readonly mean: number[];
  /** The unaligned entries (for padding). */
  private readonly small: number[];
  private readonly got: number[];
  private readonly target: number[];
  private readonly share: number[];
  private readonly weights: number[];

  constructor(
    profile: MixProfile,
    private readonly rng: Rng,
    private readonly filler: RunFields,
    lengthScale: number,
  ) {
    // Bigger guests have longer runs of everything (their allocations are bigger, not more numerous).
    const entries = profile.entries
      .filter((e) => e.share > 0)
      .map((e) => (e.max > 1 && lengthScale !== 1 ? { ...e, max: Math.round(e.max * lengthScale) } : e));
    this.entries = entries;
    this.mean = entries.map((e) => meanLength(e.aligned ? Math.max(e.min, HUGE_PAGES) : e.min, e.max));
    this.small = entries.map((e, i) => (e.aligned ? -1 : i)).filter((i) => i >= 0);
    this.got = new Array<number>(entries.length).fill(0);
    this.target = new Array<number>(entries.length).fill(0);
    this.share = new Array<number>(entries.length).fill(0);
    this.weights = new Array<number>(entries.length).fill(0);
  }

  generate(start: number, end: number, where: (pfn: number) => number): PlanRun[] {
    const { entries, target, share } = this;
    let p = start;
    while (p < end) {
      const left = end - p;
      const pick = this.draw(where(p));
      const before = p;
      if (pick < 0) {
        this.push(-1, p, left);
        p = end;
      } else if (entries[pick]!.aligned) {
        p = this.placeAligned(pick, p, end);
      } else {
        const e = entries[pick]!;
        const n = Math.min(left, this.rng.logLength(e.min, e.max));
        this.push(pick, p, n);
        p += n;
      }
      const n = p - before;
      for (let i = 0; i < entries.length; i++) target[i]! += share[i]! * n;
    }
    return this.out;
  }

  /**
   * The entry of the next run (-1: none has a share here): a lottery
   * weighted by share per expected run length, tilted towards entries
   * behind their share (in runs owed) so that small regions get every
   * class in about its proportion.
   */
  private draw(w: number): number {
    const { entries, share, weights, target, got, mean } = this;
    let total = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      share[i] = e.share * (e.at ? e.at(w) : 1);
      total += share[i]!;
    }
    for (let i = 0; i < entries.length; i++) share[i] = total > 0 ? share[i]! / total : 0;
    for (let i = 0; i < entries.length; i++) {
      const owed = (target[i]! - got[i]!) / mean[i]!;
      weights[i] = share[i]! <= 0 ? 0 : (share[i]! / mean[i]!) * Math.exp(Math.max(-4, Math.min(4, 3 * owed)));
    }
    return total > 0 ? this.rng.pick(weights) : -1;
  }

  /** A run of aligned entry `pick` at the next 512-pfn boundary after p (padded with small runs), or small runs to `end` when none fits. Returns where it ends. */
  private placeAligned(pick: number, p: number, end: number): number {
    const e = this.entries[pick]!;
    const pad = (HUGE_PAGES - (p % HUGE_PAGES)) % HUGE_PAGES;
    if (pad + HUGE_PAGES > end - p) {
      // No room for an aligned run: close with small runs.
      this.fillSmall(p, end - p);
      return end;
    }
    if (pad > 0) {
      this.fillSmall(p, pad);
      p += pad;
    }
    const maxUnits = Math.floor((end - p) / HUGE_PAGES);
    const units = Math.min(maxUnits, Math.max(1, Math.floor(this.rng.logLength(Math.max(e.min, HUGE_PAGES), e.max) / HUGE_PAGES)));
    this.push(pick, p, units * HUGE_PAGES);
    return p + units * HUGE_PAGES;
  }

  /** Append [s, s+n) of entry i (-1: the filler), merged into the run before when the fields match. */
  private push(i: number, s: number, n: number): void {
    const fields = i >= 0 ? this.entries[i]!.fields : this.filler;
    if (i >= 0) this.got[i]! += n;
    const last = this.out[this.out.length - 1];
    if (last && last.start + last.count === s && sameFields(last, fields)) last.count += n;
    else this.out.push({ start: s, count: n, ...fields });
  }

  /** A small (unaligned) entry for padding, the one furthest behind. */
  private behindSmall(): number {
    let best = -1;
    let bestV = -Infinity;
    for (const i of this.small) {
      const v = (this.target[i]! - this.got[i]!) / this.mean[i]! + this.rng.float();
      if (v > bestV) {
        bestV = v;
        best = i;
      }
    }
    return best;
  }

  /** Fill [s, s+n) with small runs, each within its entry's length bounds. */
  private fillSmall(s: number, n: number): void {
    let q = s;
    while (q < s + n) {
      const i = this.behindSmall();
      const len = i < 0 ? s + n - q : Math.min(s + n - q, this.rng.logLength(this.entries[i]!.min, this.entries[i]!.max));
      this.push(i, q, len);
      q += len;
    }
  }
}
