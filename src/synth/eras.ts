/**
 * Kernel eras a synthetic guest can pretend to be: page-flag bit numbers,
 * page_type encodings, where a compound page keeps its order and kind,
 * mem_section flag bits, which drivers mark what, and the VMCOREINFO the
 * kernel of that version exports. Values come from the kernel sources of
 * each version (docs/kernel-eras.md gives the file and line of each).
 *
 * This table is the generator's own: the decoder in src/kernel keeps a
 * separate one, so that each can be tested against the other.
 */

export type EraName = '4.19' | '5.10' | '5.10-nohugetlb' | '6.1' | '6.6' | '6.11' | '6.12';

/** How page_type values are built. */
export type PageTypeEncoding =
  /** 4.18–6.10: PAGE_TYPE_BASE 0xf0000000, a type clears its bit. */
  | 'bits-f0'
  /** 6.11: PAGE_TYPE_BASE 0x80000000, type bits 24–30. */
  | 'bits-80'
  /** 6.12+: one type per page, PGTY_x << 24 (kernel 4ffca5a96678). */
  | 'pgty';

export interface PageFlagBits {
  locked: number;
  referenced: number;
  uptodate: number;
  dirty: number;
  lru: number;
  active: number;
  /** PG_slab, removed in 6.10 (kernel 46df8e73a4a3, "mm: free up PG_slab"). */
  slab?: number;
  /** PG_owner_priv_1 = PG_swapcache. */
  swapcache: number;
  reserved: number;
  private: number;
  head: number;
  swapbacked: number;
  hwpoison: number;
  /** PG_mappedtodisk (4.19–6.11; 6.12 renamed it PG_owner_2). */
  mappedtodisk?: number;
}

export interface EraDef {
  name: EraName;
  description: string;
  /** OSRELEASE and init_uts_ns.name.release. */
  osrelease: string;
  /** The kernel's version as major * 100 + minor (4.19 → 419), for feature checks. */
  version: number;
  pg: PageFlagBits;
  encoding: PageTypeEncoding;
  /** u32 page_type patterns. */
  types: {
    untyped: number;
    buddy: number;
    /** PG_offline (PG_balloon in 4.19). */
    offline: number;
    table: number;
    slab?: number;
    hugetlb?: number;
  };
  /** NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE) is exported (5.1+ with CONFIG_HUGETLB_PAGE, 6.9+ always). */
  offlineExported: boolean;
  /** CONFIG_HUGETLB_PAGE. */
  hugetlbConfig: boolean;
  /** Where page[1] keeps order and kind: u8 compound_dtor@16/compound_order@17 (≤6.2), or folio->_flags_1 low byte (6.6+). */
  compound: 'tail-fields' | 'flags1';
  /** How a hugetlb folio is marked. */
  hugetlb: 'dtor' | 'flags1-bit' | 'page-type' | 'none';
  /** HUGETLB_PAGE_DTOR and TRANSHUGE_PAGE_DTOR ids (≤6.2); THP is 2 without CONFIG_HUGETLB_PAGE. */
  hugetlbDtor?: number;
  thpDtor?: number;
  /** Bits in folio->_flags_1 (page[1].flags), 6.6+: PG_hugetlb (6.6–6.8) and PG_large_rmappable. */
  flags1HugetlbBit?: number;
  flags1LargeRmappableBit?: number;
  /** page[1] layout after order/kind: byte offsets of mapcount-like fields and the page count. */
  tail1: { entireMapcount?: number; nrPagesMapped?: number; pincount?: number; nrPages?: number; largeMapcount?: number };
  /** mem_section flag values: boot sections, hot-plugged and onlined sections, ZONE_DEVICE sections. */
  sectionFlags: { early: number; hotplug: number; device: number };
  /** /proc/kpageflags takes LRU/… of a compound tail from its folio (stable_page_flags on folios, 6.9+). */
  kpfFromFolio: boolean;
  /** KPF bit 23 is KPF_BALLOON (3.18–5.0) rather than KPF_OFFLINE. */
  kpfBalloon: boolean;
  /** Drivers that mark their pages PageOffline in this era. */
  marks: { virtioBalloon: boolean; xenBalloon: boolean; hvBalloon: boolean; vmwBalloon: boolean };
  /** Features present in this era. */
  has: { virtioMem: boolean; xenScratch: boolean; freePageReporting: boolean; vmw2m: boolean; buildId: boolean };
  /** uts_namespace.name offset (struct kref first until 6.0) and whether OFFSET() is exported. */
  utsNameOffset: number;
  utsOffsetExported: boolean;
}

const F0 = (flag: number): number => ~flag >>> 0;

const PG_4_19: PageFlagBits = {
  locked: 0, referenced: 2, uptodate: 3, dirty: 4, lru: 5, active: 6, slab: 8, swapcache: 9,
  reserved: 11, private: 12, head: 15, mappedtodisk: 16, swapbacked: 18, hwpoison: 22,
};
const PG_5_10: PageFlagBits = {
  locked: 0, referenced: 1, uptodate: 2, dirty: 3, lru: 4, active: 5, slab: 9, swapcache: 10,
  reserved: 12, private: 13, head: 16, mappedtodisk: 17, swapbacked: 19, hwpoison: 23,
};
const PG_6_6: PageFlagBits = {
  locked: 0, referenced: 2, uptodate: 3, dirty: 4, lru: 5, head: 6, active: 8, slab: 11, swapcache: 12,
  reserved: 14, private: 15, mappedtodisk: 17, swapbacked: 19, hwpoison: 23,
};
const PG_6_11: PageFlagBits = {
  locked: 0, referenced: 2, uptodate: 3, dirty: 4, lru: 5, head: 6, active: 8, swapcache: 11,
  reserved: 13, private: 14, mappedtodisk: 16, swapbacked: 18, hwpoison: 22,
};
const PG_6_12: PageFlagBits = {
  locked: 0, referenced: 2, uptodate: 3, dirty: 4, lru: 5, head: 6, active: 8, swapcache: 10,
  reserved: 13, private: 14, swapbacked: 17, hwpoison: 20,
};

const MARK_ALL = { virtioBalloon: true, xenBalloon: true, hvBalloon: true, vmwBalloon: true };
const HAS_5X = { virtioMem: true, xenScratch: true, freePageReporting: true, vmw2m: true, buildId: true };

/** mem_section flags: PRESENT 1, HAS_MEM_MAP 2, IS_ONLINE 4, IS_EARLY 8 (5.2+), TAINT_ZONE_DEVICE 16 (5.12+). */
const SEC_EARLY = 0xf;
const SEC_HOTPLUG = 0x7;

export const ERAS: readonly EraDef[] = [
  {
    name: '4.19',
    description: 'Linux 4.19: PG_balloon (virtio-balloon only, not exported), KPF_BALLOON, compound_dtor',
    osrelease: '4.19.0',
    version: 419,
    pg: PG_4_19,
    encoding: 'bits-f0',
    types: { untyped: 0xffffffff, buddy: F0(0x80), offline: F0(0x100), table: F0(0x400) },
    offlineExported: false,
    hugetlbConfig: true,
    compound: 'tail-fields',
    hugetlb: 'dtor',
    hugetlbDtor: 2,
    thpDtor: 3,
    tail1: { entireMapcount: 20 },
    sectionFlags: { early: 0x7, hotplug: 0x7, device: 0x3 },
    kpfFromFolio: false,
    kpfBalloon: true,
    marks: { virtioBalloon: true, xenBalloon: false, hvBalloon: false, vmwBalloon: false },
    has: { virtioMem: false, xenScratch: false, freePageReporting: false, vmw2m: false, buildId: false },
    utsNameOffset: 4,
    utsOffsetExported: false,
  },
  {
    name: '5.10',
    description: 'Linux 5.10: PG_offline page type (-257, exported with CONFIG_HUGETLB_PAGE), compound_dtor',
    osrelease: '5.10.0',
    version: 510,
    pg: PG_5_10,
    encoding: 'bits-f0',
    types: { untyped: 0xffffffff, buddy: F0(0x80), offline: F0(0x100), table: F0(0x400) },
    offlineExported: true,
    hugetlbConfig: true,
    compound: 'tail-fields',
    hugetlb: 'dtor',
    hugetlbDtor: 2,
    thpDtor: 3,
    tail1: { entireMapcount: 20, nrPages: 24 },
    sectionFlags: { early: SEC_EARLY, hotplug: SEC_HOTPLUG, device: 0x3 },
    kpfFromFolio: false,
    kpfBalloon: false,
    marks: MARK_ALL,
    has: HAS_5X,
    utsNameOffset: 4,
    utsOffsetExported: false,
  },
  {
    name: '5.10-nohugetlb',
    description: 'Linux 5.10 built without CONFIG_HUGETLB_PAGE: no PAGE_OFFLINE_MAPCOUNT_VALUE, no hugetlb, THP dtor 2',
    osrelease: '5.10.0',
    version: 510,
    pg: PG_5_10,
    encoding: 'bits-f0',
    types: { untyped: 0xffffffff, buddy: F0(0x80), offline: F0(0x100), table: F0(0x400) },
    offlineExported: false,
    hugetlbConfig: false,
    compound: 'tail-fields',
    hugetlb: 'none',
    thpDtor: 2,
    tail1: { entireMapcount: 20, nrPages: 24 },
    sectionFlags: { early: SEC_EARLY, hotplug: SEC_HOTPLUG, device: 0x3 },
    kpfFromFolio: false,
    kpfBalloon: false,
    marks: MARK_ALL,
    has: HAS_5X,
    utsNameOffset: 4,
    utsOffsetExported: false,
  },
  {
    name: '6.1',
    description: 'Linux 6.1: as 5.10 plus SECTION_TAINT_ZONE_DEVICE, page-table type 0x200',
    osrelease: '6.1.0',
    version: 601,
    pg: PG_5_10,
    encoding: 'bits-f0',
    types: { untyped: 0xffffffff, buddy: F0(0x80), offline: F0(0x100), table: F0(0x200) },
    offlineExported: true,
    hugetlbConfig: true,
    compound: 'tail-fields',
    hugetlb: 'dtor',
    hugetlbDtor: 2,
    thpDtor: 3,
    tail1: { entireMapcount: 20, pincount: 24, nrPages: 28 },
    sectionFlags: { early: SEC_EARLY, hotplug: SEC_HOTPLUG, device: 0x13 },
    kpfFromFolio: false,
    kpfBalloon: false,
    marks: MARK_ALL,
    has: HAS_5X,
    utsNameOffset: 0,
    utsOffsetExported: true,
  },
  {
    name: '6.6',
    description: 'Linux 6.6: folio order in page[1].flags, PG_hugetlb/PG_large_rmappable in _flags_1, PG_head bit 6',
    osrelease: '6.6.0',
    version: 606,
    pg: PG_6_6,
    encoding: 'bits-f0',
    types: { untyped: 0xffffffff, buddy: F0(0x80), offline: F0(0x100), table: F0(0x200) },
    offlineExported: true,
    hugetlbConfig: true,
    compound: 'flags1',
    hugetlb: 'flags1-bit',
    flags1HugetlbBit: 8,
    flags1LargeRmappableBit: 9,
    tail1: { entireMapcount: 24, nrPagesMapped: 28, pincount: 32, nrPages: 36 },
    sectionFlags: { early: SEC_EARLY, hotplug: SEC_HOTPLUG, device: 0x13 },
    kpfFromFolio: false,
    kpfBalloon: false,
    marks: MARK_ALL,
    has: HAS_5X,
    utsNameOffset: 0,
    utsOffsetExported: true,
  },
  {
    name: '6.11',
    description: 'Linux 6.11: page types in bits 24-30 under base 0x80000000, slab and hugetlb are page types',
    osrelease: '6.11.0',
    version: 611,
    pg: PG_6_11,
    encoding: 'bits-80',
    types: {
      untyped: 0xffffffff,
      buddy: F0(0x4000_0000),
      offline: F0(0x2000_0000),
      table: F0(0x1000_0000),
      hugetlb: F0(0x0400_0000),
      slab: F0(0x0200_0000),
    },
    offlineExported: true,
    hugetlbConfig: true,
    compound: 'flags1',
    hugetlb: 'page-type',
    flags1LargeRmappableBit: 9,
    tail1: { entireMapcount: 24, nrPagesMapped: 28, pincount: 32, nrPages: 36 },
    sectionFlags: { early: SEC_EARLY, hotplug: SEC_HOTPLUG, device: 0x13 },
    kpfFromFolio: true,
    kpfBalloon: false,
    marks: MARK_ALL,
    has: HAS_5X,
    utsNameOffset: 0,
    utsOffsetExported: true,
  },
  {
    name: '6.12',
    description: 'Linux 6.12: one page type per page, PGTY_x << 24 (buddy 0xf0, offline 0xf1, hugetlb 0xf4, slab 0xf5)',
    osrelease: '6.12.0',
    version: 612,
    pg: PG_6_12,
    encoding: 'pgty',
    types: {
      untyped: 0xffffffff,
      buddy: 0xf000_0000,
      offline: 0xf100_0000,
      table: 0xf200_0000,
      hugetlb: 0xf400_0000,
      slab: 0xf500_0000,
    },
    offlineExported: true,
    hugetlbConfig: true,
    compound: 'flags1',
    hugetlb: 'page-type',
    flags1LargeRmappableBit: 9,
    tail1: { largeMapcount: 16, entireMapcount: 20, nrPagesMapped: 24, pincount: 28, nrPages: 32 },
    sectionFlags: { early: SEC_EARLY, hotplug: SEC_HOTPLUG, device: 0x13 },
    kpfFromFolio: true,
    kpfBalloon: false,
    marks: MARK_ALL,
    has: HAS_5X,
    utsNameOffset: 0,
    utsOffsetExported: true,
  },
];

export const DEFAULT_ERA: EraName = '6.1';

export function eraByName(name: string): EraDef | undefined {
  return ERAS.find((e) => e.name === name);
}

/** The page_type a page with two types at once carries (pre-6.12 only): both bits cleared. */
export function overlapType(era: EraDef): number | undefined {
  if (era.encoding === 'pgty') return undefined;
  return (era.types.offline & era.types.buddy) >>> 0;
}

/** PG_slab is a flag (not a page type) in this era. */
export function slabIsFlag(era: EraDef): boolean {
  return era.pg.slab !== undefined;
}
