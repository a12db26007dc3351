/**
 * Kernel-era fixtures for decoder tests, written from docs/kernel-eras.md
 * (kernel sources per version), independently of the decoder: the
 * VMCOREINFO each era exports and how each page state is encoded in
 * struct page (x86_64, 64 bytes: flags 0, compound_head 8, mapping 24,
 * private 40, _mapcount/page_type 48, _refcount 52).
 */
import { VmcoreInfo } from '../../src/formats/vmcoreinfo.js';

export interface Era {
  name: string;
  pg: { lru: number; private: number; swapcache: number; swapbacked: number; slab?: number; hwpoison: number; reserved: number; head: number };
  buddy: number;
  /** Exported offline value, or undefined when not exported. */
  offlineKey?: number;
  /** What an offline page holds at offset 48. */
  offlinePage: number;
  slabType?: number;
  hugetlb: { kind: 'dtor'; dtor: number } | { kind: 'flags1'; bit: number } | { kind: 'type'; value: number } | { kind: 'none' };
  /** Compound order location: 'tail17' (page[1]+17) or 'flags1' (page[1].flags low byte). */
  order: 'tail17' | 'flags1';
  thpDtor?: number;
}

const U = (v: number): number => v | 0;

export const ERAS: Era[] = [
  { name: '4.19', pg: { lru: 5, private: 12, swapcache: 9, swapbacked: 18, slab: 8, hwpoison: 22, reserved: 11, head: 15 }, buddy: -129, offlinePage: U(0xfffffeff), hugetlb: { kind: 'dtor', dtor: 2 }, order: 'tail17', thpDtor: 3 },
  { name: '5.10', pg: { lru: 4, private: 13, swapcache: 10, swapbacked: 19, slab: 9, hwpoison: 23, reserved: 12, head: 16 }, buddy: -129, offlineKey: -257, offlinePage: -257, hugetlb: { kind: 'dtor', dtor: 2 }, order: 'tail17', thpDtor: 3 },
  { name: '5.10-nohugetlb', pg: { lru: 4, private: 13, swapcache: 10, swapbacked: 19, slab: 9, hwpoison: 23, reserved: 12, head: 16 }, buddy: -129, offlinePage: -257, hugetlb: { kind: 'none' }, order: 'tail17', thpDtor: 2 },
  { name: '6.1', pg: { lru: 4, private: 13, swapcache: 10, swapbacked: 19, slab: 9, hwpoison: 23, reserved: 12, head: 16 }, buddy: -129, offlineKey: -257, offlinePage: -257, hugetlb: { kind: 'dtor', dtor: 2 }, order: 'tail17', thpDtor: 3 },
  { name: '6.6', pg: { lru: 5, private: 15, swapcache: 12, swapbacked: 19, slab: 11, hwpoison: 23, reserved: 14, head: 6 }, buddy: -129, offlineKey: -257, offlinePage: -257, hugetlb: { kind: 'flags1', bit: 8 }, order: 'flags1' },
  { name: '6.11', pg: { lru: 5, private: 14, swapcache: 11, swapbacked: 18, hwpoison: 22, reserved: 13, head: 6 }, buddy: U(0xbfffffff), offlineKey: U(0xdfffffff), offlinePage: U(0xdfffffff), slabType: U(0xfdffffff), hugetlb: { kind: 'type', value: U(0xfbffffff) }, order: 'flags1' },
  { name: '6.12', pg: { lru: 5, private: 14, swapcache: 10, swapbacked: 17, hwpoison: 20, reserved: 13, head: 6 }, buddy: U(0xf0000000), offlineKey: U(0xf1000000), offlinePage: U(0xf1000000), slabType: U(0xf5000000), hugetlb: { kind: 'type', value: U(0xf4000000) }, order: 'flags1' },
];

export function vmcoreinfoFor(era: Era): VmcoreInfo {
  const e: Array<[string, string | number]> = [
    ['OSRELEASE', `${era.name.split('-')[0]}.0`],
    ['PAGESIZE', 4096],
    ['SIZE(page)', 64],
    ['OFFSET(page.flags)', 0],
    ['OFFSET(page._refcount)', 52],
    ['OFFSET(page.mapping)', 24],
    ['OFFSET(page.lru)', 8],
    ['OFFSET(page._mapcount)', 48],
    ['OFFSET(page.private)', 40],
    ['OFFSET(page.compound_head)', 8],
    ['LENGTH(zone.free_area)', 11],
    ['NUMBER(PG_lru)', era.pg.lru],
    ['NUMBER(PG_private)', era.pg.private],
    ['NUMBER(PG_swapcache)', era.pg.swapcache],
    ['NUMBER(PG_swapbacked)', era.pg.swapbacked],
    ['NUMBER(PG_hwpoison)', era.pg.hwpoison],
    ['NUMBER(PG_head_mask)', 2 ** era.pg.head],
    ['NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)', era.buddy],
  ];
  if (era.pg.slab !== undefined) e.push(['NUMBER(PG_slab)', era.pg.slab]);
  if (era.order === 'tail17') e.push(['OFFSET(page.compound_dtor)', 16], ['OFFSET(page.compound_order)', 17]);
  if (era.hugetlb.kind === 'dtor') e.push(['NUMBER(HUGETLB_PAGE_DTOR)', era.hugetlb.dtor]);
  if (era.hugetlb.kind === 'flags1') e.push(['NUMBER(PG_hugetlb)', era.hugetlb.bit]);
  if (era.hugetlb.kind === 'type') e.push(['NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)', era.hugetlb.value]);
  if (era.offlineKey !== undefined) e.push(['NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)', era.offlineKey]);
  if (era.slabType !== undefined) e.push(['NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)', era.slabType]);
  return VmcoreInfo.fromEntries(e);
}

export type State =
  | { kind: 'kernel' }
  | { kind: 'reserved' }
  | { kind: 'buddy-head'; order: number }
  | { kind: 'offline' }
  | { kind: 'slab'; mapcount?: number }
  | { kind: 'anon' }
  | { kind: 'cache' }
  | { kind: 'cache-private' }
  | { kind: 'swapcache' }
  | { kind: 'hwpoison' }
  | { kind: 'huge-head'; hugetlb: boolean; order: number; anon: boolean }
  | { kind: 'tail'; head: number; first: boolean; order: number; hugetlb: boolean };

const ZONE_NORMAL = 2n << 59n;

/** Encode one struct page (64 bytes) of `era` in `state`. */
export function encodePage(era: Era, state: State, pfn: number): Uint8Array {
  const b = new Uint8Array(64);
  const dv = new DataView(b.buffer);
  let flags = ZONE_NORMAL;
  const bit = (n: number | undefined): void => {
    if (n !== undefined) flags |= 1n << BigInt(n);
  };
  let mapcount = -1;
  let mapping = 0n;
  let priv = 0n;
  dv.setInt32(52, 1, true);
  switch (state.kind) {
    case 'kernel':
      break;
    case 'reserved':
      bit(era.pg.reserved);
      break;
    case 'buddy-head':
      mapcount = era.buddy;
      priv = BigInt(state.order);
      dv.setInt32(52, 0, true);
      break;
    case 'offline':
      mapcount = era.offlinePage;
      break;
    case 'slab':
      if (era.pg.slab !== undefined) bit(era.pg.slab);
      mapcount = era.slabType ?? state.mapcount ?? -1;
      mapping = 0xffff888012340000n; // kmem_cache (even)
      break;
    case 'anon':
      bit(era.pg.lru);
      bit(era.pg.swapbacked);
      mapping = 0xffff888055550000n | 1n;
      mapcount = 0;
      break;
    case 'cache':
      bit(era.pg.lru);
      mapping = 0xffff888066660000n;
      mapcount = 0;
      break;
    case 'cache-private':
      bit(era.pg.lru);
      bit(era.pg.private);
      mapping = 0xffff888066660000n;
      priv = 0xffff888077770000n;
      break;
    case 'swapcache':
      bit(era.pg.swapcache);
      bit(era.pg.swapbacked);
      mapping = 0xffff888066660000n;
      break;
    case 'hwpoison':
      bit(era.pg.hwpoison);
      break;
    case 'huge-head':
      bit(era.pg.head);
      if (state.anon) {
        bit(era.pg.lru);
        bit(era.pg.swapbacked);
        mapping = 0xffff888055550000n | 1n;
      } else mapping = 0xffff888088880000n;
      if (state.hugetlb && era.hugetlb.kind === 'type') mapcount = era.hugetlb.value;
      break;
    case 'tail': {
      dv.setBigUint64(8, 0xffffea0000000000n + BigInt(state.head) * 64n + 1n, true);
      if (state.first) {
        if (era.order === 'tail17') {
          b[17] = state.order;
          b[16] = state.hugetlb && era.hugetlb.kind === 'dtor' ? era.hugetlb.dtor : era.thpDtor ?? 1;
        } else {
          flags = BigInt(state.order);
          if (state.hugetlb && era.hugetlb.kind === 'flags1') flags |= 1n << BigInt(era.hugetlb.bit);
        }
      }
      break;
    }
  }
  void pfn;
  dv.setBigUint64(0, flags, true);
  dv.setBigUint64(24, mapping, true);
  dv.setBigUint64(40, priv, true);
  dv.setInt32(48, mapcount, true);
  return b;
}

export function encodePages(era: Era, states: State[], firstPfn: number): Uint8Array {
  const out = new Uint8Array(states.length * 64);
  states.forEach((s, i) => out.set(encodePage(era, s, firstPfn + i), i * 64));
  return out;
}
