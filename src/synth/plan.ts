/**
 * The plan of a synthetic guest: every pfn from 0 to maxPfn as runs, each
 * run saying what the pfns truly are (class), whether the hypervisor backs
 * them, whether the image carries them, what their struct page encodes and
 * what their content is. Everything else (image, struct pages, kpageflags,
 * truth manifest, hypervisor-side files) is derived from the plan.
 *
 * Runs are objects, one per run, never one per pfn: a 16 GiB guest has a
 * few tens of thousands of them.
 */

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** 2^27-byte sections of 4 KiB pages (x86_64 SECTION_SIZE_BITS 27). */
export const PAGES_PER_SECTION = 32768;
/** Order of a PMD-sized compound page and of a 2 MiB balloon page. */
export const HUGE_ORDER = 9;
export const HUGE_PAGES = 512;
/** MAX_ORDER - 1: the largest buddy block is 2^10 pages (LENGTH(zone.free_area) = 11). */
export const MAX_BUDDY_ORDER = 10;

export const PAGE_CLASSES = [
  /** No RAM at this pfn (an e820 hole, an unused part of a section). */
  'hole',
  /** Kernel memory: image text/data and ordinary kernel allocations. */
  'kernel',
  /** Memory-management metadata of the stub kernel: page tables, mem_section, struct pages. */
  'meta',
  /** Kernel pages holding only zeros. */
  'zero',
  /** Free memory in the buddy allocator. */
  'free',
  /** Page cache without PG_private. */
  'cache',
  /** Page cache with PG_private (buffer heads). */
  'cache-private',
  /** Anonymous user memory. */
  'anon',
  /** Transparent huge pages (order-9 anonymous folios). */
  'thp',
  /** hugetlbfs pages (order-9 folios). */
  'hugetlb',
  /** Slab pages. */
  'slab',
  /** Page-table pages (page type "table"). */
  'pgtable',
  /** Pages with PG_hwpoison. */
  'hwpoison',
  /** Logically offline: inflated in a balloon (owner says which). */
  'offline',
  /** virtio-mem memory that is not plugged: fake-offline subblocks, or blocks never added. */
  'unplugged',
  /** Hot-added memory never onlined (hv_balloon): PageOffline, not backed. */
  'never-onlined',
  /** Xen: pages handed out by alloc_xenballooned_pages (offline cleared, grant-mapped). */
  'grant',
  /** ZONE_DEVICE memory (the Xen unpopulated-alloc "Xen scratch" range). */
  'device',
  /** Pages of a loaded kexec image (kexec segment destinations). */
  'kexec',
  /** RAM reserved for the crash kernel: not in /proc/vmcore. */
  'crashkernel',
] as const;
export type PageClass = (typeof PAGE_CLASSES)[number];

/** What the struct page of a pfn encodes. */
export const MEMMAP_STATES = [
  /** No struct page (section not present). */
  'none',
  /** PG_reserved. */
  'reserved',
  /** An allocated page with no flags and no type. */
  'plain',
  /** A free buddy block: the head has the buddy type and the order in private; tails are plain (refcount 0). */
  'free',
  /** Page type offline (PG_balloon before 5.1). */
  'offline',
  'cache',
  'cache-private',
  'anon',
  /** Order-9 anonymous compound pages, per era. */
  'thp',
  /** Order-9 hugetlb compound pages, per era. */
  'hugetlb',
  'slab',
  'pgtable',
  'hwpoison',
  /** ZONE_DEVICE struct pages (PG_reserved, zone DEVICE, pgmap set). */
  'device',
  /** Two page types at once (offline and buddy bits both cleared), possible before 6.12. */
  'type-overlap',
] as const;
export type MemmapState = (typeof MEMMAP_STATES)[number];

/** Content of a pfn in the image. */
export type Content =
  /** All zero (left as a sparse hole). */
  | 'zero'
  /** Page data from the content generator. */
  | 'data'
  /** Structures of the stub kernel (page tables, mem_section, struct pages, utsname). */
  | 'meta'
  /** Not in the image (no PT_LOAD covers it). */
  | 'none';

/** A deviation of /proc/kpageflags from what the struct page says. */
export type KpfOverride = 'clear-offline' | 'clear-buddy';

/** Variants that change an encoding without changing the class. */
export type Variant =
  /** Slab pages whose _mapcount cycles -1 / buddy / offline value (PG_slab eras). */
  | 'adversarial'
  /** Free blocks reported to the host (free page reporting, PG_reported on the head). */
  | 'reported'
  /** The kernel's shared zero page (KPF_ZERO_PAGE). */
  | 'zero-page';

export interface PlanRun {
  start: number;
  count: number;
  cls: PageClass;
  /** Backed by RAM in the hypervisor's view. */
  ram: boolean;
  /** Covered by a PT_LOAD of the image. */
  load: boolean;
  memmap: MemmapState;
  content: Content;
  /** Which balloon, device or driver owns the pfns. */
  owner?: string | undefined;
  fault?: string | undefined;
  kpf?: KpfOverride | undefined;
  variant?: Variant | undefined;
}

export type RunFields = Omit<PlanRun, 'start' | 'count'>;

export function sameFields(a: RunFields, b: RunFields): boolean {
  return (
    a.cls === b.cls &&
    a.ram === b.ram &&
    a.load === b.load &&
    a.memmap === b.memmap &&
    a.content === b.content &&
    a.owner === b.owner &&
    a.fault === b.fault &&
    a.kpf === b.kpf &&
    a.variant === b.variant
  );
}

/** Runs that keep their compound or block structure when cut: they must stay 512-aligned. */
export function isAligned512(memmap: MemmapState): boolean {
  return memmap === 'thp' || memmap === 'hugetlb';
}

/**
 * A plan under construction: runs tile [0, maxPfn) with no gap. `paint`
 * overwrites a range (splitting runs), `expand` replaces runs with a
 * generated sequence; `finish` merges equal neighbours and indexes.
 */
export class PlanBuilder {
  runs: PlanRun[];
  readonly maxPfn: number;

  constructor(maxPfn: number, fill: RunFields) {
    this.maxPfn = maxPfn;
    this.runs = [{ start: 0, count: maxPfn, ...fill }];
  }

  /** Index of the run containing pfn. */
  indexOf(pfn: number): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runs[mid]!.start <= pfn) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  runAt(pfn: number): PlanRun {
    return this.runs[this.indexOf(pfn)]!;
  }

  /** Overwrite [start, start+count) with `fields` (or with a patch of each covered run's fields). */
  paint(start: number, count: number, fields: RunFields | ((old: PlanRun) => RunFields)): void {
    if (count <= 0) return;
    const end = start + count;
    if (start < 0 || end > this.maxPfn) throw new Error(`paint [${start}, ${end}) outside [0, ${this.maxPfn})`);
    const i = this.indexOf(start);
    let j = i;
    const out: PlanRun[] = [];
    while (j < this.runs.length && this.runs[j]!.start < end) {
      const r = this.runs[j]!;
      const rEnd = r.start + r.count;
      if (r.start < start) out.push({ ...r, count: start - r.start });
      const s = Math.max(start, r.start);
      const e = Math.min(end, rEnd);
      const f = typeof fields === 'function' ? fields(r) : fields;
      out.push({ ...stripRun(r), ...f, start: s, count: e - s });
      if (rEnd > end) out.push({ ...r, start: end, count: rEnd - end });
      j++;
    }
    this.runs.splice(i, j - i, ...out);
  }

  /** Replace every run for which `select` returns a generator output with that output (which must tile the run). */
  expand(select: (r: PlanRun) => PlanRun[] | undefined): void {
    const out: PlanRun[] = [];
    for (const r of this.runs) {
      const rep = select(r);
      if (!rep) {
        out.push(r);
        continue;
      }
      let at = r.start;
      for (const x of rep) {
        if (x.start !== at || x.count <= 0) throw new Error(`expansion of run at ${r.start} does not tile it (at ${at}, got ${x.start}+${x.count})`);
        at += x.count;
        out.push(x);
      }
      if (at !== r.start + r.count) throw new Error(`expansion of run at ${r.start} ends at ${at}, not ${r.start + r.count}`);
    }
    this.runs = out;
  }

  /** Pfns of runs matching `pred`, as [start, count] spans in order. */
  spans(pred: (r: PlanRun) => boolean): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const r of this.runs) if (pred(r)) out.push([r.start, r.count]);
    return out;
  }

  finish(): Plan {
    const merged: PlanRun[] = [];
    for (const r of this.runs) {
      const last = merged[merged.length - 1];
      if (last && last.start + last.count === r.start && sameFields(last, r)) last.count += r.count;
      else merged.push(r);
    }
    this.runs = [];
    return new Plan(merged, this.maxPfn);
  }
}

function stripRun(r: PlanRun): RunFields {
  const { start: _s, count: _c, ...rest } = r;
  return rest;
}

/** A finished plan: immutable runs with a start index for binary search. */
export class Plan {
  readonly runs: readonly PlanRun[];
  readonly maxPfn: number;
  private readonly starts: Float64Array;

  constructor(runs: PlanRun[], maxPfn: number) {
    this.runs = runs;
    this.maxPfn = maxPfn;
    this.starts = new Float64Array(runs.length);
    for (let i = 0; i < runs.length; i++) this.starts[i] = runs[i]!.start;
  }

  indexOf(pfn: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= pfn) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  runAt(pfn: number): PlanRun {
    return this.runs[this.indexOf(pfn)]!;
  }

  /** Call `visit(run, s, e)` for each run meeting [start, end), in order, with [s, e) the pfns they share. */
  forEachRunIn(start: number, end: number, visit: (r: PlanRun, s: number, e: number) => void): void {
    for (let i = this.indexOf(start); i < this.runs.length; i++) {
      const r = this.runs[i]!;
      if (r.start >= end) break;
      visit(r, Math.max(start, r.start), Math.min(end, r.start + r.count));
    }
  }

  /** Pages per class (and totals) for summaries. */
  classCounts(): Record<PageClass, number> {
    const c = Object.fromEntries(PAGE_CLASSES.map((k) => [k, 0])) as Record<PageClass, number>;
    for (const r of this.runs) c[r.cls] += r.count;
    return c;
  }
}
