/**
 * Sorted-interval helpers shared by the readers and the run tables:
 * binary search over sorted starts, and the resolution of overlapping
 * intervals where, at every point, the one with the highest priority wins
 * (an ELF core's first PT_LOAD, a flattened file's last record).
 */

/** Index of the last element of sorted `starts` that is <= x, or -1. */
export function lastAtOrBelow(starts: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! <= x) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

export interface ResolvedPieces {
  start: Float64Array;
  end: Float64Array;
  /** Index of the input interval that owns each piece. */
  id: Int32Array;
}

/**
 * Cut intervals [starts[i], ends[i]) into disjoint pieces, sorted, each
 * owned by the highest-priority interval covering it; touching pieces of
 * one owner merge. O(n log n); O(n) when nothing overlaps.
 */
export function resolveOverlaps(starts: ArrayLike<number>, ends: ArrayLike<number>, priority: ArrayLike<number>): ResolvedPieces {
  const n = starts.length;
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => starts[a]! - starts[b]! || priority[b]! - priority[a]!);
  let overlap = false;
  for (let k = 1; k < n; k++) if (starts[order[k]!]! < ends[order[k - 1]!]!) overlap = true;
  const cap = overlap ? 2 * n : n;
  const outStart = new Float64Array(cap);
  const outEnd = new Float64Array(cap);
  const outId = new Int32Array(cap);
  let count = 0;
  const push = (s: number, e: number, id: number): void => {
    if (e <= s) return;
    const last = count - 1;
    if (last >= 0 && outId[last] === id && outEnd[last] === s) {
      outEnd[last] = e;
      return;
    }
    outStart[count] = s;
    outEnd[count] = e;
    outId[count] = id;
    count++;
  };
  if (!overlap) {
    for (let k = 0; k < n; k++) push(starts[order[k]!]!, ends[order[k]!]!, order[k]!);
  } else {
    const bounds = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      bounds[2 * i] = starts[i]!;
      bounds[2 * i + 1] = ends[i]!;
    }
    bounds.sort();
    const heap = new PriorityHeap((a, b) => priority[a]! > priority[b]!);
    let next = 0;
    for (let b = 0; b < bounds.length - 1; b++) {
      const x = bounds[b]!;
      const y = bounds[b + 1]!;
      if (y <= x) continue;
      while (next < n && starts[order[next]!]! <= x) heap.push(order[next++]!);
      // Finished intervals are dropped when they surface; the live top wins.
      while (heap.size && ends[heap.top!]! <= x) heap.pop();
      const top = heap.top;
      if (top !== undefined) push(x, y, top);
    }
  }
  return { start: outStart.slice(0, count), end: outEnd.slice(0, count), id: outId.slice(0, count) };
}

/** A binary heap of indices; `before(a, b)` puts a nearer the top. */
class PriorityHeap {
  private readonly items: number[] = [];
  constructor(private readonly before: (a: number, b: number) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  get top(): number | undefined {
    return this.items[0];
  }

  push(x: number): void {
    const h = this.items;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const par = (i - 1) >> 1;
      if (!this.before(h[i]!, h[par]!)) break;
      [h[i], h[par]] = [h[par]!, h[i]!];
      i = par;
    }
  }

  pop(): void {
    const h = this.items;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
