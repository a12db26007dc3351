/**
 * Page properties: what a page-flag source (struct page in mem_map, or a
 * /proc/kpageflags table) says about each pfn, decoded once per window
 * into a Uint16Array. The dump-level decision (classify/) works on these
 * bits only, so one decode serves every dump level.
 */
export const Prop = {
  /** Compound tail page: never excluded on its own, only through its head's range. */
  TAIL: 1 << 0,
  /** Free buddy block head (not slab); the block order is in `buddyOrder`. */
  BUDDY: 1 << 1,
  /** Unaccepted memory (confidential-computing guests, Linux 6.16+ key). */
  UNACCEPTED: 1 << 2,
  /** Page cache: PG_lru, or PG_swapcache with PG_swapbacked. */
  CACHE: 1 << 3,
  /** PG_private. */
  PRIVATE: 1 << 4,
  /** Anonymous mapping (mapping & PAGE_MAPPING_ANON), not slab. */
  ANON: 1 << 5,
  /** hugetlbfs compound head. */
  HUGETLB: 1 << 6,
  /** PG_hwpoison. */
  HWPOISON: 1 << 7,
  /** Logically offline, by the kernel's exported page-type value. */
  OFFLINE: 1 << 8,
  /** Logically offline, detected without the exported key (PG_balloon / PG_offline bit). */
  OFFLINE_FALLBACK: 1 << 9,
  /** Slab page. */
  SLAB: 1 << 10,
  /** No struct page for this pfn (section without memmap, or its memmap not readable). */
  NOMEMMAP: 1 << 11,
  /** ZONE_DEVICE (kpageflags NOPAGE, or a section tainted as ZONE_DEVICE). */
  DEVICE: 1 << 12,
  /** Compound head (PG_head); its order is in `compoundOrder`. */
  HEAD: 1 << 13,
  /** More than one page type at once (possible before Linux 6.12's single PGTY). */
  TYPE_OVERLAP: 1 << 14,
  /** PG_reserved. */
  RESERVED: 1 << 15,
} as const;

/** Order value meaning "not a valid order". */
export const NO_ORDER = 0xff;

/** Decoded properties of a window of pfns; arrays are reused between windows. */
export class PropWindow {
  start = 0;
  count = 0;
  readonly props: Uint16Array;
  /** Compound order for HEAD pages whose order is valid, else 0. */
  readonly compoundOrder: Uint8Array;
  /** Buddy order for BUDDY pages (NO_ORDER when out of range). */
  readonly buddyOrder: Uint8Array;

  constructor(capacity: number) {
    this.props = new Uint16Array(capacity);
    this.compoundOrder = new Uint8Array(capacity);
    this.buddyOrder = new Uint8Array(capacity);
  }

  get capacity(): number {
    return this.props.length;
  }

  reset(start: number, count: number): void {
    this.start = start;
    this.count = count;
    this.props.fill(0, 0, count);
    this.compoundOrder.fill(0, 0, count);
    this.buddyOrder.fill(0, 0, count);
  }
}
