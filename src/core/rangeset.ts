/**
 * RangeSet: an immutable set of integers (pfns, usually) held as sorted,
 * disjoint, non-adjacent half-open ranges [start, end).
 *
 * Membership and "how far does this state last" questions are answered by
 * binary search, so a set of a million ranges costs O(log n) per query and
 * callers can work on runs instead of single pfns.
 */
import { lastAtOrBelow } from './intervals.js';

export interface Range {
  start: number;
  /** Exclusive. */
  end: number;
}

export class RangeSet implements Iterable<Range> {
  /** starts[i] < ends[i] <= starts[i+1] - 1 (ranges never touch). */
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;

  private constructor(starts: Float64Array, ends: Float64Array) {
    this.starts = starts;
    this.ends = ends;
  }

  static readonly EMPTY = new RangeSet(new Float64Array(0), new Float64Array(0));

  /** Build from ranges in any order, overlapping or touching; empty ranges are dropped. */
  static from(ranges: Iterable<Range>): RangeSet {
    const list = [...ranges].filter((r) => r.end > r.start).sort((a, b) => a.start - b.start || a.end - b.end);
    return RangeSet.fromSortedLoose(list);
  }

  /** Build from ranges sorted by start; overlapping or touching ranges merge. */
  static fromSortedLoose(list: readonly Range[]): RangeSet {
    const b = new RangeSetBuilder();
    for (const r of list) b.add(r.start, r.end);
    return b.build();
  }

  static single(start: number, end: number): RangeSet {
    return end > start ? new RangeSet(Float64Array.of(start), Float64Array.of(end)) : RangeSet.EMPTY;
  }

  get rangeCount(): number {
    return this.starts.length;
  }

  /** Number of integers in the set. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.starts.length; i++) n += this.ends[i]! - this.starts[i]!;
    return n;
  }

  get isEmpty(): boolean {
    return this.starts.length === 0;
  }

  /** First member, or undefined. */
  get first(): number | undefined {
    return this.starts.length ? this.starts[0] : undefined;
  }

  /** One past the last member, or undefined. */
  get end(): number | undefined {
    return this.ends.length ? this.ends[this.ends.length - 1] : undefined;
  }

  rangeAt(i: number): Range {
    return { start: this.starts[i]!, end: this.ends[i]! };
  }

  *[Symbol.iterator](): Iterator<Range> {
    for (let i = 0; i < this.starts.length; i++) yield { start: this.starts[i]!, end: this.ends[i]! };
  }

  /** Index of the last range with start <= x, or -1. */
  private floorIndex(x: number): number {
    return lastAtOrBelow(this.starts, x);
  }


  has(x: number): boolean {
    const i = this.floorIndex(x);
    return i >= 0 && x < this.ends[i]!;
  }

  /**
   * The run starting at x with constant membership: whether x is a member,
   * and where that state ends (never beyond `limit`).
   */
  span(x: number, limit = Number.POSITIVE_INFINITY): { inside: boolean; end: number } {
    const i = this.floorIndex(x);
    if (i >= 0 && x < this.ends[i]!) return { inside: true, end: Math.min(this.ends[i]!, limit) };
    const next = i + 1 < this.starts.length ? this.starts[i + 1]! : Number.POSITIVE_INFINITY;
    return { inside: false, end: Math.min(next, limit) };
  }

  /** Members in [start, end) as ranges, clipped. */
  *within(start: number, end: number): Generator<Range> {
    let i = Math.max(0, this.floorIndex(start));
    for (; i < this.starts.length; i++) {
      const s = this.starts[i]!;
      if (s >= end) break;
      const e = this.ends[i]!;
      if (e <= start) continue;
      yield { start: Math.max(s, start), end: Math.min(e, end) };
    }
  }

  /** Number of members in [start, end). */
  countWithin(start: number, end: number): number {
    let n = 0;
    for (const r of this.within(start, end)) n += r.end - r.start;
    return n;
  }

  overlaps(start: number, end: number): boolean {
    return !this.within(start, end).next().done;
  }

  clip(start: number, end: number): RangeSet {
    return RangeSet.fromSortedLoose([...this.within(start, end)]);
  }

  union(other: RangeSet): RangeSet {
    return RangeSet.from([...this, ...other]);
  }

  intersect(other: RangeSet): RangeSet {
    const out = new RangeSetBuilder();
    let i = 0;
    let j = 0;
    while (i < this.starts.length && j < other.starts.length) {
      const s = Math.max(this.starts[i]!, other.starts[j]!);
      const e = Math.min(this.ends[i]!, other.ends[j]!);
      if (s < e) out.add(s, e);
      if (this.ends[i]! < other.ends[j]!) i++;
      else j++;
    }
    return out.build();
  }

  subtract(other: RangeSet): RangeSet {
    const out = new RangeSetBuilder();
    let j = 0;
    for (let i = 0; i < this.starts.length; i++) {
      let s = this.starts[i]!;
      const e = this.ends[i]!;
      while (j < other.starts.length && other.ends[j]! <= s) j++;
      let k = j;
      while (s < e && k < other.starts.length && other.starts[k]! < e) {
        if (other.starts[k]! > s) out.add(s, other.starts[k]!);
        s = Math.max(s, other.ends[k]!);
        k++;
      }
      if (s < e) out.add(s, e);
    }
    return out.build();
  }

  equals(other: RangeSet): boolean {
    if (other.starts.length !== this.starts.length) return false;
    for (let i = 0; i < this.starts.length; i++) {
      if (this.starts[i] !== other.starts[i] || this.ends[i] !== other.ends[i]) return false;
    }
    return true;
  }

  toJSON(): Array<[number, number]> {
    return [...this].map((r) => [r.start, r.end]);
  }

  /** `[0x1, 0x9f) [0x100, 0x8000)`, at most `max` ranges then `… (+N more)`. */
  describe(max = 8): string {
    const parts: string[] = [];
    for (let i = 0; i < Math.min(max, this.starts.length); i++) {
      parts.push(formatRange(this.starts[i]!, this.ends[i]!));
    }
    if (this.starts.length > max) parts.push(`… (+${this.starts.length - max} more)`);
    return parts.join(' ');
  }
}

/** A pfn range as every human output writes it: half-open, hex, `[0x100, 0x200)`. */
export function formatRange(start: number, end: number): string {
  return `[0x${start.toString(16)}, 0x${end.toString(16)})`;
}

/**
 * Append-only builder: ranges must arrive sorted by start (overlap and
 * adjacency merge). Used when streaming produces ranges in order.
 */
export class RangeSetBuilder {
  private starts: number[] = [];
  private ends: number[] = [];

  add(start: number, end: number): void {
    if (end <= start) return;
    const n = this.starts.length;
    if (n > 0) {
      const lastEnd = this.ends[n - 1]!;
      if (start < this.starts[n - 1]!) throw new RangeError(`RangeSetBuilder: ${start} arrives after ${this.starts[n - 1]}`);
      if (start <= lastEnd) {
        if (end > lastEnd) this.ends[n - 1] = end;
        return;
      }
    }
    this.starts.push(start);
    this.ends.push(end);
  }

  get rangeCount(): number {
    return this.starts.length;
  }

  build(): RangeSet {
    // Private constructor access through a static factory on the prototype.
    return makeRangeSet(Float64Array.from(this.starts), Float64Array.from(this.ends));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const makeRangeSet = (s: Float64Array, e: Float64Array): RangeSet => new (RangeSet as any)(s, e) as RangeSet;
