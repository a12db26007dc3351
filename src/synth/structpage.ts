/**
 * struct page (x86_64, 64 bytes) for each pfn of a plan, in the encoding
 * of the chosen kernel era, and the /proc/kpageflags word the kernel's
 * stable_page_flags() would compute from it (fs/proc/page.c).
 *
 *   +0  flags            PG_* bits; zone in bits 51-53 (NODES_SHIFT 10, ZONES_WIDTH 3), node 0
 *   +8  lru.next / compound_head (tail: head's address | 1) / pgmap (ZONE_DEVICE)
 *   +16 lru.prev / page[1]: compound_dtor u8, compound_order u8 (≤ 6.2)
 *   +24 mapping          anon: anon_vma | 1; movable (balloon): mapping | 2; tails: TAIL_MAPPING
 *   +32 index
 *   +40 private          buddy head: order; PG_private: buffer_head; balloon: device
 *   +48 _mapcount / page_type
 *   +52 _refcount
 *   +56 memcg_data
 *
 * Per-pfn loops write into the caller's buffer through one DataView; no
 * allocation, no BigInt.
 */
import { KPF_BITS } from '../formats/kpageflags/table.js';
import { hash3 } from './rng.js';
import { overlapType, slabIsFlag, type EraDef } from './eras.js';
import { HUGE_PAGES, MAX_BUDDY_ORDER, type Plan, type PlanRun } from './plan.js';
import { STRUCT_PAGE_SIZE, type KernelLayout } from './layout.js';

const TWO32 = 0x1_0000_0000;
/** VMEMMAP_START's high word (0xffffea0000000000). */
const VMEMMAP_HI = 0xffffea00;
const PAGE_OFFSET_HI = 0xffff8880;
/** TAIL_MAPPING = POISON_POINTER_DELTA + 0x400 (0xdead000000000400). */
const TAIL_MAPPING_HI = 0xdead0000;
const TAIL_MAPPING_LO = 0x400;
const ZONE_SHIFT_HI = 51 - 32;
export const ZONE = { DMA: 0, DMA32: 1, NORMAL: 2, MOVABLE: 3, DEVICE: 4 } as const;

/** /proc/kpageflags bits (the table's definition), plus high-word positions (bit − 32). */
const KPF = { ...KPF_BITS, HI_RESERVED: KPF_BITS.RESERVED - 32, HI_PRIVATE: KPF_BITS.PRIVATE - 32 } as const;

const b = (n: number): number => (1 << n) >>> 0;

function zoneOf(pfn: number): number {
  if (pfn < 0x1000) return ZONE.DMA;
  if (pfn < 0x10_0000) return ZONE.DMA32;
  return ZONE.NORMAL;
}

/** A plausible direct-map pointer (64-byte aligned) derived from (seed, a, b). */
function ptrLo(seed: number, a: number, c: number): number {
  return (hash3(seed, a, c) & 0xffff_ffc0) >>> 0;
}

export interface PageEncoder {
  /** Fill struct pages for pfns [pfn, pfn+count) into dst at off (count*64 bytes). */
  structPages(pfn: number, count: number, dst: Uint8Array, off: number): void;
  /** Fill kpageflags words (low/high halves) for pfns [pfn, pfn+count) at lo[i]/hi[i], i from `at`. */
  kpageflags(pfn: number, count: number, lo: Uint32Array, hi: Uint32Array, at: number): void;
}

/** What every encoding step needs: the era's bits and types, the flag words of the states, where the memmap is. */
interface Encoding {
  era: EraDef;
  seed: number;
  pg: EraDef['pg'];
  T: EraDef['types'];
  /** The page type a 'type-overlap' run carries (two types at once). */
  overlap: number;
  /** PG_slab exists (≤ 6.9): slab is a flag, not a page type. */
  slabFlag: boolean;
  /** Virtual address of pfn 0's struct page as (lo, hi) words. */
  memmapBaseLo: number;
  memmapBaseHi: number;
  /** struct page flag words of the states. */
  F: { reserved: number; cache: number; anon: number; hugetlbHead: number; hwpoison: number };
  /** kpageflags words of the states. */
  K: { cache: number; anonFlags: number; hugetlbFlags: number };
}

function encodingOf(era: EraDef, layout: KernelLayout, seed: number): Encoding {
  const pg = era.pg;
  const flat = layout.model === 'flatmem';
  return {
    era,
    seed,
    pg,
    T: era.types,
    overlap: overlapType(era) ?? era.types.offline,
    slabFlag: slabIsFlag(era),
    memmapBaseLo: flat ? (layout.structStart * 4096) % TWO32 : 0,
    memmapBaseHi: flat ? PAGE_OFFSET_HI + Math.floor((layout.structStart * 4096) / TWO32) : VMEMMAP_HI,
    F: {
      reserved: b(pg.reserved),
      cache: b(pg.lru) | b(pg.uptodate) | b(pg.referenced),
      anon: b(pg.lru) | b(pg.active) | b(pg.uptodate) | b(pg.swapbacked) | b(pg.dirty),
      hugetlbHead: b(pg.head) | b(pg.uptodate) | b(pg.dirty),
      hwpoison: b(pg.hwpoison),
    },
    K: {
      cache: b(KPF.LRU) | b(KPF.UPTODATE) | b(KPF.REFERENCED),
      anonFlags: b(KPF.LRU) | b(KPF.ACTIVE) | b(KPF.UPTODATE) | b(KPF.SWAPBACKED) | b(KPF.DIRTY),
      hugetlbFlags: b(KPF.UPTODATE) | b(KPF.DIRTY),
    },
  };
}

export function makePageEncoder(plan: Plan, era: EraDef, layout: KernelLayout, seed: number): PageEncoder {
  const c = encodingOf(era, layout, seed);
  return {
    structPages(pfn, count, dst, off) {
      dst.fill(0, off, off + count * STRUCT_PAGE_SIZE);
      const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
      plan.forEachRunIn(pfn, pfn + count, (r, s, e) => encodeRun(c, r, s, e, dv, off + (s - pfn) * STRUCT_PAGE_SIZE));
    },
    kpageflags(pfn, count, lo, hi, at) {
      plan.forEachRunIn(pfn, pfn + count, (r, s, e) => kpfRun(c, r, s, e, lo, hi, at + (s - pfn)));
    },
  };
}

// ---------------------------------------------------------------------------
// struct page

/** Write the virtual address of pfn's struct page (| low) as a u64 at o. */
function setPageAddr(c: Encoding, dv: DataView, o: number, pfn: number, low: number): void {
  const off = pfn * STRUCT_PAGE_SIZE + c.memmapBaseLo;
  const lo = off % TWO32;
  dv.setUint32(o, (lo | low) >>> 0, true);
  dv.setUint32(o + 4, c.memmapBaseHi + (off - lo) / TWO32, true);
}

/** Set the u32 at `field` of n struct pages from `off` to `value`. */
function setEach(dv: DataView, off: number, n: number, field: number, value: number): void {
  for (let k = 0, o = off + field; k < n; k++, o += STRUCT_PAGE_SIZE) dv.setUint32(o, value, true);
}

/** Set a u64 pointer (lo, PAGE_OFFSET_HI) at o. */
function setDirectPtr(dv: DataView, o: number, lo: number): void {
  dv.setUint32(o, lo, true);
  dv.setUint32(o + 4, PAGE_OFFSET_HI, true);
}

/** Struct pages of pfns [s, e) of run r, written at off. */
function encodeRun(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
  const m = r.memmap;
  const n = e - s;
  // Common words: flags high word (zone), mapcount -1, refcount 1.
  for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
    dv.setUint32(o + 4, ((m === 'device' ? ZONE.DEVICE : zoneOf(p)) << ZONE_SHIFT_HI) >>> 0, true);
    dv.setUint32(o + 48, c.T.untyped, true);
    dv.setUint32(o + 52, 1, true);
  }
  switch (m) {
    case 'none':
    case 'plain':
      return;
    case 'reserved':
      return setEach(dv, off, n, 0, c.F.reserved);
    case 'device':
      return encodeDevice(c, r, n, dv, off);
    case 'free':
      return encodeFree(c, r, s, e, dv, off, c.T.buddy);
    case 'type-overlap':
      if (r.cls === 'free') return encodeFree(c, r, s, e, dv, off, c.overlap);
      return setEach(dv, off, n, 48, c.overlap);
    case 'offline':
      return encodeOffline(c, r, s, e, dv, off);
    case 'cache':
    case 'cache-private':
      return encodeCache(c, r, s, e, dv, off);
    case 'anon':
      return encodeAnon(c, r, s, e, dv, off);
    case 'thp':
    case 'hugetlb':
      return encodeCompound(c, r, s, e, dv, off);
    case 'slab':
      return encodeSlab(c, r, s, e, dv, off);
    case 'pgtable':
      return setEach(dv, off, n, 48, c.T.table);
    case 'hwpoison':
      return setEach(dv, off, n, 0, c.F.hwpoison);
  }
}

/** ZONE_DEVICE: PG_reserved and the dev_pagemap pointer. */
function encodeDevice(c: Encoding, r: PlanRun, n: number, dv: DataView, off: number): void {
  const pgmap = ptrLo(c.seed, r.start, 11);
  for (let k = 0, o = off; k < n; k++, o += STRUCT_PAGE_SIZE) {
    dv.setUint32(o, c.F.reserved, true);
    setDirectPtr(dv, o + 8, pgmap);
  }
}

function encodeOffline(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
  const movable = r.owner === 'virtio-balloon';
  const bal = ptrLo(c.seed, 0xba1, 0);
  // Hot-added memory is initialised PG_reserved before 6.11 and stays so when never onlined
  // (hv_balloon only adds PageOffline); virtio-mem's fake-offline pages get PG_dirty.
  const flags = r.cls === 'never-onlined' && c.era.version < 611 ? c.F.reserved : r.cls === 'unplugged' ? b(c.pg.dirty) : 0;
  for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
    if (flags) dv.setUint32(o, flags, true);
    dv.setUint32(o + 48, c.T.offline, true);
    // On the balloon's page list.
    setPageAddr(c, dv, o + 8, p + 1, 0);
    if (movable) {
      // __SetPageMovable(page, balloon mapping) and set_page_private(page, balloon device).
      setDirectPtr(dv, o + 24, (bal + 0x100 + 2) >>> 0);
      setDirectPtr(dv, o + 40, bal);
    }
  }
}

function encodeCache(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
  const priv = r.memmap === 'cache-private';
  const mapLo = ptrLo(c.seed, r.start, 1);
  for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
    dv.setUint32(o, priv ? (c.F.cache | b(c.pg.private)) >>> 0 : c.F.cache, true);
    setDirectPtr(dv, o + 24, mapLo);
    dv.setUint32(o + 32, p - r.start, true);
    if (priv) {
      setDirectPtr(dv, o + 40, ptrLo(c.seed, p, 2));
      dv.setUint32(o + 52, 2, true);
    }
  }
}

function encodeAnon(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
  const av = (ptrLo(c.seed, r.start, 3) | 1) >>> 0;
  for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
    dv.setUint32(o, c.F.anon, true);
    setDirectPtr(dv, o + 24, av);
    dv.setUint32(o + 32, 0x7f000 + (p - r.start), true);
    dv.setUint32(o + 48, 0, true);
  }
}

function encodeSlab(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
  const { T, slabFlag } = c;
  const cacheLo = ptrLo(c.seed, r.start, 5);
  const at = slabFlag ? 24 : 8; // struct slab keeps slab_cache at +8 once slab is a page type
  for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
    setDirectPtr(dv, o + at, cacheLo);
    if (slabFlag) {
      dv.setUint32(o, b(c.pg.slab!), true);
      if (r.variant === 'adversarial') {
        const k = p % 3;
        dv.setUint32(o + 48, k === 0 ? T.untyped : k === 1 ? T.buddy : T.offline, true);
      }
    } else {
      dv.setUint32(o + 48, T.slab!, true);
    }
  }
}

/** Cut [r.start, r.start+r.count) into aligned buddy blocks; write the heads inside [s, e). */
function encodeFree(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number, headType: number): void {
  setEach(dv, off, e - s, 52, 0);
  const reported = r.variant === 'reported';
  forEachBlock(r.start, r.start + r.count, (head, order) => {
    if (head + (1 << order) <= s) return true;
    if (head >= e) return false;
    if (head >= s) {
      const o = off + (head - s) * STRUCT_PAGE_SIZE;
      dv.setUint32(o + 48, headType, true);
      dv.setUint32(o + 40, order, true);
      if (reported) dv.setUint32(o, b(c.pg.uptodate), true); // PG_reported aliases PG_uptodate
      setPageAddr(c, dv, o + 8, head + (1 << order), 0);
    }
    return true;
  });
}

/** Order-9 folios: a head, a first tail carrying the folio's fields, plain tails. */
function encodeCompound(c: Encoding, r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
  const thp = r.memmap === 'thp';
  for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
    const head = r.start + Math.floor((p - r.start) / HUGE_PAGES) * HUGE_PAGES;
    const k = p - head;
    if (k === 0) {
      encodeCompoundHead(c, r, head, dv, o);
      continue;
    }
    // Tail: compound_head = &head | 1, refcount 0.
    setPageAddr(c, dv, o + 8, head, 1);
    dv.setUint32(o + 52, 0, true);
    if (k === 1) encodeFirstTail(c, thp, dv, o);
    else {
      dv.setUint32(o + 24, TAIL_MAPPING_LO, true);
      dv.setUint32(o + 28, TAIL_MAPPING_HI, true);
    }
  }
}

function encodeCompoundHead(c: Encoding, r: PlanRun, head: number, dv: DataView, o: number): void {
  const thp = r.memmap === 'thp';
  dv.setUint32(o, thp ? (b(c.pg.head) | c.F.anon) >>> 0 : c.F.hugetlbHead, true);
  setDirectPtr(dv, o + 24, thp ? (ptrLo(c.seed, r.start, 3) | 1) >>> 0 : ptrLo(c.seed, r.start, 7));
  dv.setUint32(o + 32, thp ? 0x7f000 + (head - r.start) : (head - r.start) / HUGE_PAGES, true);
  if (!thp && c.era.hugetlb === 'page-type') dv.setUint32(o + 48, c.T.hugetlb!, true);
}

/** page[1]: the folio's order and kind (compound_dtor/order ≤ 6.2, _flags_1 after) and its counters. */
function encodeFirstTail(c: Encoding, thp: boolean, dv: DataView, o: number): void {
  const era = c.era;
  if (era.compound === 'tail-fields') {
    dv.setUint8(o + 16, thp ? era.thpDtor! : era.hugetlbDtor!);
    dv.setUint8(o + 17, 9);
    if (era.tail1.nrPages === undefined) {
      dv.setUint32(o + 24, TAIL_MAPPING_LO, true);
      dv.setUint32(o + 28, TAIL_MAPPING_HI, true);
    }
  } else {
    let f1 = 9; // folio order in the low byte of _flags_1
    if (thp && era.flags1LargeRmappableBit !== undefined) f1 |= b(era.flags1LargeRmappableBit);
    if (!thp && era.hugetlb === 'flags1-bit') f1 |= b(era.flags1HugetlbBit!);
    dv.setUint32(o, f1 >>> 0, true);
  }
  const t = era.tail1;
  if (t.largeMapcount !== undefined) dv.setUint32(o + t.largeMapcount, 0, true);
  if (t.entireMapcount !== undefined) dv.setUint32(o + t.entireMapcount, 0, true);
  if (t.nrPagesMapped !== undefined) dv.setUint32(o + t.nrPagesMapped, 0, true);
  if (t.pincount !== undefined) dv.setUint32(o + t.pincount, 0, true);
  if (t.nrPages !== undefined) dv.setUint32(o + t.nrPages, HUGE_PAGES, true);
}

// ---------------------------------------------------------------------------
// /proc/kpageflags

/** kpageflags words of pfns [s, e) of run r, at lo[at…]/hi[at…]. */
function kpfRun(c: Encoding, r: PlanRun, s: number, e: number, lo: Uint32Array, hi: Uint32Array, at: number): void {
  const n = e - s;
  const [l, h] = kpfWords(c, r);
  lo.fill(l, at, at + n);
  hi.fill(h, at, at + n);
  kpfPerPage(c, r, s, e, lo, at);
  if (r.kpf === 'clear-offline') for (let i = at; i < at + n; i++) lo[i] = (lo[i]! & ~b(KPF.OFFLINE)) >>> 0;
  if (r.kpf === 'clear-buddy') for (let i = at; i < at + n; i++) lo[i] = (lo[i]! & ~b(KPF.BUDDY)) >>> 0;
}

/** The (low, high) kpageflags words every page of run r shares. */
function kpfWords(c: Encoding, r: PlanRun): [number, number] {
  switch (r.memmap) {
    case 'none':
    case 'device':
      return [b(KPF.NOPAGE), 0];
    case 'reserved':
      return [r.variant === 'zero-page' ? b(KPF.ZERO_PAGE) : 0, b(KPF.HI_RESERVED)];
    case 'offline': {
      let l = b(KPF.OFFLINE);
      if (r.cls === 'unplugged') l = (l | b(KPF.DIRTY)) >>> 0;
      return [l, r.cls === 'never-onlined' && c.era.version < 611 ? b(KPF.HI_RESERVED) : 0];
    }
    case 'cache':
      return [c.K.cache, 0];
    case 'cache-private':
      return [c.K.cache, b(KPF.HI_PRIVATE)];
    case 'anon':
      return [(c.K.anonFlags | b(KPF.ANON) | b(KPF.MMAP)) >>> 0, 0];
    case 'pgtable':
      return [b(KPF.PGTABLE), 0];
    case 'hwpoison':
      return [b(KPF.HWPOISON), 0];
    case 'slab':
      return [b(KPF.SLAB), 0];
    case 'plain':
    case 'free':
    case 'type-overlap':
    case 'thp':
    case 'hugetlb':
      return [0, 0]; // per page (kpfPerPage)
  }
}

/** The low words that differ page by page: buddy blocks, folio heads and tails, adversarial slab. */
function kpfPerPage(c: Encoding, r: PlanRun, s: number, e: number, lo: Uint32Array, at: number): void {
  const m = r.memmap;
  const n = e - s;
  if (m === 'free' || (m === 'type-overlap' && r.cls === 'free')) {
    // KPF_BUDDY on every page of a free block (PageBuddy head, page_count 0 and is_free_buddy_page for the rest).
    lo.fill(b(KPF.BUDDY), at, at + n);
    if (m === 'type-overlap' || r.variant === 'reported') {
      const headWord = (b(KPF.BUDDY) | (m === 'type-overlap' ? b(KPF.OFFLINE) : b(KPF.UPTODATE))) >>> 0;
      forEachBlock(r.start, r.start + r.count, (head) => {
        if (head >= e) return false;
        if (head >= s) lo[at + head - s] = headWord;
        return true;
      });
    }
  } else if (m === 'type-overlap') {
    lo.fill((b(KPF.BUDDY) | b(KPF.OFFLINE)) >>> 0, at, at + n);
  } else if (m === 'thp' || m === 'hugetlb') {
    const thp = m === 'thp';
    const own = thp ? (c.K.anonFlags | b(KPF.ANON) | b(KPF.MMAP)) >>> 0 : (c.K.hugetlbFlags | b(KPF.MMAP)) >>> 0;
    const kind = thp ? b(KPF.THP) : b(KPF.HUGE);
    const headWord = (own | kind | b(KPF.COMPOUND_HEAD)) >>> 0;
    // A tail's raw flags lack LRU/ACTIVE/... before the folio-based stable_page_flags.
    const tailOwn = c.era.kpfFromFolio ? own : thp ? (b(KPF.ANON) | b(KPF.MMAP)) >>> 0 : b(KPF.MMAP);
    const tailWord = (tailOwn | kind | b(KPF.COMPOUND_TAIL)) >>> 0;
    for (let p = s; p < e; p++) lo[at + p - s] = (p - r.start) % HUGE_PAGES === 0 ? headWord : tailWord;
  } else if (m === 'slab' && r.variant === 'adversarial' && c.slabFlag) {
    // ≤ 6.10 the kernel's PageBuddy()/PageOffline() test page_type bits, so they answer for these too.
    for (let p = s; p < e; p++) {
      const k = p % 3;
      if (k === 1) lo[at + p - s] = (b(KPF.SLAB) | b(KPF.BUDDY)) >>> 0;
      else if (k === 2) lo[at + p - s] = (b(KPF.SLAB) | b(KPF.OFFLINE)) >>> 0;
    }
  }
}

/**
 * Visit the aligned buddy blocks a free run [start, end) is cut into,
 * lowest first: at each position the largest order that is aligned, fits
 * and is at most MAX_BUDDY_ORDER. Stops when `visit` returns false.
 */
export function forEachBlock(start: number, end: number, visit: (head: number, order: number) => boolean): void {
  let p = start;
  while (p < end) {
    let order = 0;
    while (order < MAX_BUDDY_ORDER && p % (2 << order) === 0 && p + (2 << order) <= end) order++;
    if (!visit(p, order)) return;
    p += 1 << order;
  }
}
