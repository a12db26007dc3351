/**
 * The dump-level decision, page by page, exactly as makedumpfile 1.7.x's
 * __exclude_unnecessary_pages orders it (first match wins):
 *
 *   compound tail → skipped (only excluded through its head's range)
 *   free buddy block (level & 16)     → 1 << order pages from the head
 *   unaccepted (level & 16)           → 1 << (free_area length − 1) pages
 *   cache without PG_private, not anon (level & 2)
 *   cache, not anon (level & 4)       → cache or cache-private
 *   anon or hugetlb (level & 8)       → user
 *   hwpoison                          → at every level
 *   offline                           → at every level
 *
 * A compound head excluded by any rule takes its whole compound range
 * (1 << compound order pages) with it. Ranges may run past a window; the
 * remainder is carried into the next window. Holes are never turned into
 * exclusions. Offline pages found without the VMCOREINFO key (fallback
 * decoding) are excluded like offline pages and counted apart. Pages the
 * input holds no data for (ABSENT) stay ABSENT whatever their struct page
 * says, but still take part in ranges, as in makedumpfile.
 */
import { NO_ORDER, Prop, type PropWindow } from '../kernel/props.js';
import { PfnState } from '../formats/types.js';
import { DL, Reason } from './reasons.js';

export interface DecideStats {
  /** Buddy heads whose order was out of range (kept, as makedumpfile does). */
  badBuddyOrders: number;
  /** Offline pages decided through fallback decoding. */
  offlineFallback: number;
}

export class Decider {
  readonly level: number;
  private carryEnd = 0;
  private carryReason: number = Reason.KEPT;
  private readonly unacceptedPages: number;
  readonly stats: DecideStats = { badBuddyOrders: 0, offlineFallback: 0 };

  constructor(level: number, freeAreaLength: number | undefined) {
    this.level = level;
    this.unacceptedPages = 2 ** Math.max(0, (freeAreaLength ?? 11) - 1);
  }

  /** Start over (a new pass). */
  reset(): void {
    this.carryEnd = 0;
    this.carryReason = Reason.KEPT;
    this.stats.badBuddyOrders = 0;
    this.stats.offlineFallback = 0;
  }

  /**
   * Decide a window. `states` holds the input's PfnState per pfn; `win`
   * the decoded properties (or null when no page-flag source exists: then
   * every present page is kept). Writes reason codes into `out`.
   * Windows must arrive in ascending order.
   */
  decide(states: Uint8Array, win: PropWindow | null, start: number, count: number, out: Uint8Array): void {
    const level = this.level;
    for (let i = 0; i < count; i++) {
      const st = states[i]!;
      const pfn = start + i;
      if (pfn < this.carryEnd) {
        out[i] = st === PfnState.PRESENT ? this.carryReason : st === PfnState.HOLE ? Reason.HOLE : Reason.ABSENT;
        continue;
      }
      if (st === PfnState.HOLE) {
        out[i] = Reason.HOLE;
        continue;
      }
      const absent = st === PfnState.ABSENT;
      if (!win) {
        out[i] = absent ? Reason.ABSENT : Reason.KEPT;
        continue;
      }
      const p = win.props[i]!;
      if (p & (Prop.NOMEMMAP | Prop.TAIL)) {
        out[i] = absent ? Reason.ABSENT : Reason.KEPT;
        continue;
      }
      let nr = p & Prop.HEAD ? 2 ** win.compoundOrder[i]! : 1;
      let r: number;
      if (level & DL.FREE && p & Prop.BUDDY) {
        const order = win.buddyOrder[i]!;
        if (order === NO_ORDER) {
          this.stats.badBuddyOrders++;
          out[i] = absent ? Reason.ABSENT : Reason.KEPT;
          continue;
        }
        nr = 2 ** order;
        r = Reason.FREE;
      } else if (level & DL.FREE && p & Prop.UNACCEPTED) {
        nr = this.unacceptedPages;
        r = Reason.UNACCEPTED;
      } else if (level & DL.CACHE && p & Prop.CACHE && !(p & (Prop.PRIVATE | Prop.ANON))) {
        r = Reason.CACHE;
      } else if (level & DL.CACHE_PRIVATE && p & Prop.CACHE && !(p & Prop.ANON)) {
        r = p & Prop.PRIVATE ? Reason.CACHE_PRIVATE : Reason.CACHE;
      } else if (level & DL.USER && p & (Prop.ANON | Prop.HUGETLB)) {
        r = Reason.USER;
      } else if (p & Prop.HWPOISON) {
        r = Reason.HWPOISON;
      } else if (p & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)) {
        r = Reason.OFFLINE;
        if (p & Prop.OFFLINE_FALLBACK) this.stats.offlineFallback += nr;
      } else {
        out[i] = absent ? Reason.ABSENT : Reason.KEPT;
        continue;
      }
      out[i] = absent ? Reason.ABSENT : r;
      if (nr > 1) {
        const end = Math.min(count, i + nr);
        for (let k = i + 1; k < end; k++) {
          const s = states[k];
          out[k] = s === PfnState.PRESENT ? r : s === PfnState.HOLE ? Reason.HOLE : Reason.ABSENT;
        }
        if (i + nr > count) {
          this.carryEnd = pfn + nr;
          this.carryReason = r;
        }
        i = end - 1;
      }
    }
  }
}
