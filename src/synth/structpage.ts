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

export function makePageEncoder(plan: Plan, era: EraDef, layout: KernelLayout, seed: number): PageEncoder {
  const pg = era.pg;
  const T = era.types;
  const overlap = overlapType(era) ?? T.offline;
  const slabFlag = slabIsFlag(era);
  const flat = layout.model === 'flatmem';
  /** Virtual address (lo, hi) of pfn's struct page. */
  const memmapBaseLo = flat ? (layout.structStart * 4096) % TWO32 : 0;
  const memmapBaseHi = flat ? PAGE_OFFSET_HI + Math.floor((layout.structStart * 4096) / TWO32) : VMEMMAP_HI;

  /** Write the virtual address of pfn's struct page (| low) as a u64 at o. */
  function setPageAddr(dv: DataView, o: number, pfn: number, low: number): void {
    const off = pfn * STRUCT_PAGE_SIZE + memmapBaseLo;
    const lo = off % TWO32;
    dv.setUint32(o, (lo | low) >>> 0, true);
    dv.setUint32(o + 4, memmapBaseHi + (off - lo) / TWO32, true);
  }

  // Flag words of the states.
  const F = {
    reserved: b(pg.reserved),
    cache: b(pg.lru) | b(pg.uptodate) | b(pg.referenced),
    anon: b(pg.lru) | b(pg.active) | b(pg.uptodate) | b(pg.swapbacked) | b(pg.dirty),
    hugetlbHead: b(pg.head) | b(pg.uptodate) | b(pg.dirty),
    hwpoison: b(pg.hwpoison),
  };
  const K = {
    cache: b(KPF.LRU) | b(KPF.UPTODATE) | b(KPF.REFERENCED),
    anonFlags: b(KPF.LRU) | b(KPF.ACTIVE) | b(KPF.UPTODATE) | b(KPF.SWAPBACKED) | b(KPF.DIRTY),
    hugetlbFlags: b(KPF.UPTODATE) | b(KPF.DIRTY),
  };

  function structPages(pfn: number, count: number, dst: Uint8Array, off: number): void {
    dst.fill(0, off, off + count * STRUCT_PAGE_SIZE);
    const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    const end = pfn + count;
    let i = plan.indexOf(pfn);
    while (i < plan.runs.length) {
      const r = plan.runs[i]!;
      if (r.start >= end) break;
      const s = Math.max(pfn, r.start);
      const e = Math.min(end, r.start + r.count);
      encodeRun(r, s, e, dv, off + (s - pfn) * STRUCT_PAGE_SIZE);
      i++;
    }
  }

  function encodeRun(r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
    const m = r.memmap;
    const device = m === 'device';
    // Common words: flags high word (zone), mapcount -1, refcount 1.
    for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
      dv.setUint32(o + 4, ((device ? ZONE.DEVICE : zoneOf(p)) << ZONE_SHIFT_HI) >>> 0, true);
      dv.setUint32(o + 48, T.untyped, true);
      dv.setUint32(o + 52, 1, true);
    }
    const tag = r.start;
    switch (m) {
      case 'none':
        return;
      case 'reserved':
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) dv.setUint32(o, F.reserved, true);
        return;
      case 'device': {
        const pgmap = ptrLo(seed, tag, 11);
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
          dv.setUint32(o, F.reserved, true);
          dv.setUint32(o + 8, pgmap, true);
          dv.setUint32(o + 12, PAGE_OFFSET_HI, true);
        }
        return;
      }
      case 'plain':
        return;
      case 'free':
        encodeFree(r, s, e, dv, off, T.buddy);
        return;
      case 'type-overlap':
        if (r.cls === 'free') encodeFree(r, s, e, dv, off, overlap);
        else for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) dv.setUint32(o + 48, overlap, true);
        return;
      case 'offline': {
        const movable = r.owner === 'virtio-balloon';
        const bal = ptrLo(seed, 0xba1, 0);
        // Hot-added memory is initialised PG_reserved before 6.11 and stays so when never onlined
        // (hv_balloon only adds PageOffline); virtio-mem's fake-offline pages get PG_dirty.
        const flags = r.cls === 'never-onlined' && era.version < 611 ? F.reserved : r.cls === 'unplugged' ? b(pg.dirty) : 0;
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
          if (flags) dv.setUint32(o, flags, true);
          dv.setUint32(o + 48, T.offline, true);
          // On the balloon's page list.
          setPageAddr(dv, o + 8, p + 1, 0);
          if (movable) {
            // __SetPageMovable(page, balloon mapping) and set_page_private(page, balloon device).
            dv.setUint32(o + 24, (bal + 0x100 + 2) >>> 0, true);
            dv.setUint32(o + 28, PAGE_OFFSET_HI, true);
            dv.setUint32(o + 40, bal, true);
            dv.setUint32(o + 44, PAGE_OFFSET_HI, true);
          }
        }
        return;
      }
      case 'cache':
      case 'cache-private': {
        const priv = m === 'cache-private';
        const mapLo = ptrLo(seed, tag, 1);
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
          dv.setUint32(o, priv ? (F.cache | b(pg.private)) >>> 0 : F.cache, true);
          dv.setUint32(o + 24, mapLo, true);
          dv.setUint32(o + 28, PAGE_OFFSET_HI, true);
          dv.setUint32(o + 32, p - r.start, true);
          if (priv) {
            dv.setUint32(o + 40, ptrLo(seed, p, 2), true);
            dv.setUint32(o + 44, PAGE_OFFSET_HI, true);
            dv.setUint32(o + 52, 2, true);
          }
        }
        return;
      }
      case 'anon': {
        const av = (ptrLo(seed, tag, 3) | 1) >>> 0;
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
          dv.setUint32(o, F.anon, true);
          dv.setUint32(o + 24, av, true);
          dv.setUint32(o + 28, PAGE_OFFSET_HI, true);
          dv.setUint32(o + 32, 0x7f000 + (p - r.start), true);
          dv.setUint32(o + 48, 0, true);
        }
        return;
      }
      case 'thp':
      case 'hugetlb':
        encodeCompound(r, s, e, dv, off);
        return;
      case 'slab': {
        const cacheLo = ptrLo(seed, tag, 5);
        const at = slabFlag ? 24 : 8; // struct slab keeps slab_cache at +8 once slab is a page type
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
          dv.setUint32(o + at, cacheLo, true);
          dv.setUint32(o + at + 4, PAGE_OFFSET_HI, true);
          if (slabFlag) {
            dv.setUint32(o, b(pg.slab!), true);
            if (r.variant === 'adversarial') {
              const k = p % 3;
              dv.setUint32(o + 48, k === 0 ? T.untyped : k === 1 ? T.buddy : T.offline, true);
            }
          } else {
            dv.setUint32(o + 48, T.slab!, true);
          }
        }
        return;
      }
      case 'pgtable':
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) dv.setUint32(o + 48, T.table, true);
        return;
      case 'hwpoison':
        for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) dv.setUint32(o, F.hwpoison, true);
        return;
    }
  }

  /** Cut [r.start, r.start+r.count) into aligned buddy blocks; write the heads inside [s, e). */
  function encodeFree(r: PlanRun, s: number, e: number, dv: DataView, off: number, headType: number): void {
    for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) dv.setUint32(o + 52, 0, true);
    const reported = r.variant === 'reported';
    forEachBlock(r.start, r.start + r.count, (head, order) => {
      if (head + (1 << order) <= s) return true;
      if (head >= e) return false;
      if (head >= s) {
        const o = off + (head - s) * STRUCT_PAGE_SIZE;
        dv.setUint32(o + 48, headType, true);
        dv.setUint32(o + 40, order, true);
        if (reported) dv.setUint32(o, b(pg.uptodate), true); // PG_reported aliases PG_uptodate
        setPageAddr(dv, o + 8, head + (1 << order), 0);
      }
      return true;
    });
  }

  function encodeCompound(r: PlanRun, s: number, e: number, dv: DataView, off: number): void {
    const thp = r.memmap === 'thp';
    const av = (ptrLo(seed, r.start, 3) | 1) >>> 0;
    const fileMap = ptrLo(seed, r.start, 7);
    for (let p = s, o = off; p < e; p++, o += STRUCT_PAGE_SIZE) {
      const head = r.start + Math.floor((p - r.start) / HUGE_PAGES) * HUGE_PAGES;
      const k = p - head;
      if (k === 0) {
        dv.setUint32(o, thp ? (b(pg.head) | F.anon) >>> 0 : F.hugetlbHead, true);
        dv.setUint32(o + 24, thp ? av : fileMap, true);
        dv.setUint32(o + 28, PAGE_OFFSET_HI, true);
        dv.setUint32(o + 32, thp ? 0x7f000 + (head - r.start) : (head - r.start) / HUGE_PAGES, true);
        if (!thp && era.hugetlb === 'page-type') dv.setUint32(o + 48, T.hugetlb!, true);
        continue;
      }
      // Tail: compound_head = &head | 1, refcount 0.
      setPageAddr(dv, o + 8, head, 1);
      dv.setUint32(o + 52, 0, true);
      if (k === 1) {
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
        continue;
      }
      dv.setUint32(o + 24, TAIL_MAPPING_LO, true);
      dv.setUint32(o + 28, TAIL_MAPPING_HI, true);
    }
  }

  function kpageflags(pfn: number, count: number, lo: Uint32Array, hi: Uint32Array, at: number): void {
    const end = pfn + count;
    let i = plan.indexOf(pfn);
    while (i < plan.runs.length) {
      const r = plan.runs[i]!;
      if (r.start >= end) break;
      const s = Math.max(pfn, r.start);
      const e = Math.min(end, r.start + r.count);
      kpfRun(r, s, e, lo, hi, at + (s - pfn));
      i++;
    }
  }

  function kpfRun(r: PlanRun, s: number, e: number, lo: Uint32Array, hi: Uint32Array, at: number): void {
    const n = e - s;
    let l = 0;
    let h = 0;
    const m = r.memmap;
    switch (m) {
      case 'none':
      case 'device':
        l = b(KPF.NOPAGE);
        break;
      case 'reserved':
        h = b(KPF.HI_RESERVED);
        if (r.variant === 'zero-page') l = b(KPF.ZERO_PAGE);
        break;
      case 'plain':
        break;
      case 'offline':
        l = b(KPF.OFFLINE);
        if (r.cls === 'never-onlined' && era.version < 611) h = b(KPF.HI_RESERVED);
        if (r.cls === 'unplugged') l = (l | b(KPF.DIRTY)) >>> 0;
        break;
      case 'cache':
        l = K.cache;
        break;
      case 'cache-private':
        l = K.cache;
        h = b(KPF.HI_PRIVATE);
        break;
      case 'anon':
        l = (K.anonFlags | b(KPF.ANON) | b(KPF.MMAP)) >>> 0;
        break;
      case 'pgtable':
        l = b(KPF.PGTABLE);
        break;
      case 'hwpoison':
        l = b(KPF.HWPOISON);
        break;
      case 'slab':
        l = b(KPF.SLAB);
        break;
      case 'free':
      case 'type-overlap':
      case 'thp':
      case 'hugetlb':
        break; // per pfn below
    }
    lo.fill(l, at, at + n);
    hi.fill(h, at, at + n);
    if (m === 'free' || (m === 'type-overlap' && r.cls === 'free')) {
      // KPF_BUDDY on every page of a free block (PageBuddy head, page_count 0 and is_free_buddy_page for the rest).
      lo.fill(b(KPF.BUDDY), at, at + n);
      if (m === 'type-overlap' || r.variant === 'reported') {
        forEachBlock(r.start, r.start + r.count, (head) => {
          if (head >= e) return false;
          if (head >= s) {
            if (m === 'type-overlap') lo[at + head - s] = (b(KPF.BUDDY) | b(KPF.OFFLINE)) >>> 0;
            else lo[at + head - s] = (b(KPF.BUDDY) | b(KPF.UPTODATE)) >>> 0;
          }
          return true;
        });
      }
    } else if (m === 'type-overlap') {
      lo.fill((b(KPF.BUDDY) | b(KPF.OFFLINE)) >>> 0, at, at + n);
    } else if (m === 'thp' || m === 'hugetlb') {
      const thp = m === 'thp';
      const own = thp ? (K.anonFlags | b(KPF.ANON) | b(KPF.MMAP)) >>> 0 : (K.hugetlbFlags | b(KPF.MMAP)) >>> 0;
      const kind = thp ? b(KPF.THP) : b(KPF.HUGE);
      const headWord = (own | kind | b(KPF.COMPOUND_HEAD)) >>> 0;
      // A tail's raw flags lack LRU/ACTIVE/... before the folio-based stable_page_flags.
      const tailOwn = era.kpfFromFolio ? own : thp ? (b(KPF.ANON) | b(KPF.MMAP)) >>> 0 : b(KPF.MMAP);
      const tailWord = (tailOwn | kind | b(KPF.COMPOUND_TAIL)) >>> 0;
      for (let p = s; p < e; p++) lo[at + p - s] = (p - r.start) % HUGE_PAGES === 0 ? headWord : tailWord;
    } else if (m === 'slab' && r.variant === 'adversarial' && slabFlag) {
      // ≤ 6.10 the kernel's PageBuddy()/PageOffline() test page_type bits, so they answer for these too.
      for (let p = s; p < e; p++) {
        const k = p % 3;
        if (k === 1) lo[at + p - s] = (b(KPF.SLAB) | b(KPF.BUDDY)) >>> 0;
        else if (k === 2) lo[at + p - s] = (b(KPF.SLAB) | b(KPF.OFFLINE)) >>> 0;
      }
    }
    if (r.kpf === 'clear-offline') for (let i = at; i < at + n; i++) lo[i] = (lo[i]! & ~b(KPF.OFFLINE)) >>> 0;
    if (r.kpf === 'clear-buddy') for (let i = at; i < at + n; i++) lo[i] = (lo[i]! & ~b(KPF.BUDDY)) >>> 0;
  }

  return { structPages, kpageflags };
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
