/**
 * Page properties from a /proc/kpageflags-style table (one u64 of KPF_*
 * bits per pfn, include/uapi/linux/kernel-page-flags.h). The kernel
 * computes these per page from the folio (fs/proc/page.c
 * stable_page_flags), so every page carries its own answer: KPF_BUDDY is
 * set on every page of a free block, compound tails carry their folio's
 * LRU/ANON bits. Each pfn is therefore decided on its own (no ranges).
 */
import { KPF_BITS } from '../formats/kpageflags/table.js';
import { Prop, type PropWindow } from '../kernel/props.js';

/** KPF_* bit numbers (include/uapi/linux/kernel-page-flags.h). */
export const KPF = KPF_BITS;

const bit = (b: number): number => (1 << b) >>> 0;
const HI = (b: number): number => (1 << (b - 32)) >>> 0;

/** Properties of one table entry (lo, hi = the two 32-bit halves). */
export function kpfToProps(lo: number, hi: number): number {
  if (lo & bit(KPF.NOPAGE)) return Prop.NOMEMMAP;
  let p = 0;
  const slab = (lo & bit(KPF.SLAB)) !== 0;
  if (slab) p |= Prop.SLAB;
  if (!slab && lo & bit(KPF.BUDDY)) p |= Prop.BUDDY;
  if (lo & bit(KPF.LRU) || (lo & bit(KPF.SWAPCACHE) && lo & bit(KPF.SWAPBACKED))) p |= Prop.CACHE;
  if (hi & HI(KPF.PRIVATE)) p |= Prop.PRIVATE;
  if (!slab && lo & bit(KPF.ANON)) p |= Prop.ANON;
  if (lo & bit(KPF.HUGE) && !(lo & bit(KPF.THP))) p |= Prop.HUGETLB;
  if (lo & bit(KPF.HWPOISON)) p |= Prop.HWPOISON;
  if (!slab && lo & bit(KPF.OFFLINE)) p |= Prop.OFFLINE;
  if (hi & HI(KPF.RESERVED)) p |= Prop.RESERVED;
  return p;
}

/** Fill a window's properties from table words (lo/hi arrays indexed like the window). */
export function fillFromKpf(win: PropWindow, lo: Uint32Array, hi: Uint32Array, valid: number): void {
  const props = win.props;
  for (let i = 0; i < valid; i++) props[i] = kpfToProps(lo[i]!, hi[i]!);
  // Pfns beyond the table: nothing known, kept.
  for (let i = valid; i < win.count; i++) props[i] = Prop.NOMEMMAP;
  // Buddy pages are excluded one by one (order 0).
  win.buddyOrder.fill(0, 0, win.count);
  win.compoundOrder.fill(0, 0, win.count);
}
