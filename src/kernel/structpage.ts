/**
 * Decode struct page into page properties (props.ts), following the rules
 * makedumpfile 1.7.x applies in __exclude_unnecessary_pages, with the
 * encodings of every kernel era chosen from the VMCOREINFO keys present.
 */
import { DumpError } from '../core/errors.js';
import type { VmcoreInfo } from '../formats/vmcoreinfo.js';
import { NO_ORDER, Prop, type PropWindow } from './props.js';
import { legacyOfflineMatcher, matcherFor, matches, type PageTypeMatcher } from './pagetypes.js';

/** A flag bit in the 64-bit page->flags, as (word, mask). */
interface FlagBit {
  hi: boolean;
  mask: number;
  bit: number;
}

function flagBit(bit: number | undefined): FlagBit | undefined {
  if (bit === undefined || bit < 0 || bit > 63) return undefined;
  return bit < 32 ? { hi: false, mask: (1 << bit) >>> 0, bit } : { hi: true, mask: (1 << (bit - 32)) >>> 0, bit };
}

/** How hugetlb folios and compound orders are encoded. */
type HugetlbScheme =
  | { kind: 'page-type'; matcher: PageTypeMatcher } // 6.9+: head page_type; order in _flags_1 low byte
  | { kind: 'flags-1'; bit: FlagBit } // 6.6–6.8: PG_hugetlb in _flags_1; order in _flags_1 low byte
  | { kind: 'dtor'; dtorOffset: number | undefined; dtorValue: number | undefined; orderOffset: number | undefined } // ≤ 6.5
;

export type OfflineDetection = 'vmcoreinfo' | 'fallback' | 'unavailable';

export interface DecoderDescription {
  structPageSize: number;
  buddy: string;
  offline: string;
  offlineDetection: OfflineDetection;
  slab: string;
  hugetlb: string;
  unaccepted: string;
}

export class StructPageDecoder {
  readonly size: number;
  private readonly offFlags: number;
  private readonly offMapping: number | undefined;
  private readonly offPrivate: number | undefined;
  private readonly offMapcount: number | undefined;
  private readonly offCompoundHead: number | undefined;
  private readonly headMask: FlagBit | undefined;
  private readonly lru: FlagBit | undefined;
  private readonly private_: FlagBit | undefined;
  private readonly swapcache: FlagBit | undefined;
  private readonly swapbacked: FlagBit | undefined;
  private readonly slabBit: FlagBit | undefined;
  private readonly hwpoison: FlagBit | undefined;
  private readonly reserved: FlagBit | undefined;
  private readonly buddy: PageTypeMatcher | undefined;
  private readonly offline: PageTypeMatcher | undefined;
  readonly offlineDetection: OfflineDetection;
  private readonly slabType: PageTypeMatcher | undefined;
  private readonly unaccepted: PageTypeMatcher | undefined;
  private readonly hugetlb: HugetlbScheme;
  /** LENGTH(zone.free_area): buddy orders at or above it are invalid. */
  readonly freeAreaLength: number | undefined;
  private readonly vi: VmcoreInfo;

  constructor(vi: VmcoreInfo, file: string) {
    this.vi = vi;
    const why = 'reading struct page';
    this.size = vi.requireSize('page', why);
    this.offFlags = vi.requireOffset('page.flags', why);
    const checkOff = (name: string, width: number): number | undefined => {
      const o = vi.offset(name);
      if (o !== undefined && o + width > this.size) {
        throw new DumpError('DUMP_CORRUPT', `VMCOREINFO OFFSET(${name})=${o} lies outside SIZE(page)=${this.size}`, { file });
      }
      return o;
    };
    checkOff('page.flags', 8);
    this.offMapping = checkOff('page.mapping', 8);
    this.offPrivate = checkOff('page.private', 8);
    this.offMapcount = checkOff('page._mapcount', 4);
    this.offCompoundHead = checkOff('page.compound_head', 8) ?? checkOff('page.compound_info', 8);

    const headMask = vi.number('PG_head_mask');
    const headBit = headMask !== undefined && headMask > 0 ? Math.log2(headMask) : NaN;
    this.headMask = Number.isInteger(headBit) ? flagBit(headBit) : undefined;
    this.lru = flagBit(vi.number('PG_lru'));
    this.private_ = flagBit(vi.number('PG_private'));
    this.swapcache = flagBit(vi.number('PG_swapcache'));
    this.swapbacked = flagBit(vi.number('PG_swapbacked'));
    this.slabBit = flagBit(vi.number('PG_slab'));
    this.hwpoison = flagBit(vi.number('PG_hwpoison'));
    // The kernel does not export PG_reserved. In enum pageflags
    // (include/linux/page-flags.h) it has stood right before PG_private
    // since 2.6 — "PG_arch_1, PG_reserved, PG_private" in 4.19 (12, 13),
    // 5.10 and 6.1 (12, 13), and 6.12 with PG_owner_2 inserted earlier
    // (13, 14) — and PG_private is exported, so it is taken from there.
    const privateBit = vi.number('PG_private');
    this.reserved = flagBit(vi.number('PG_reserved') ?? (privateBit !== undefined && privateBit > 0 ? privateBit - 1 : undefined));

    const buddyValue = vi.number('PAGE_BUDDY_MAPCOUNT_VALUE');
    this.buddy = buddyValue !== undefined ? matcherFor(buddyValue) : undefined;
    const offlineValue = vi.number('PAGE_OFFLINE_MAPCOUNT_VALUE');
    if (offlineValue !== undefined) {
      this.offline = matcherFor(offlineValue);
      this.offlineDetection = 'vmcoreinfo';
    } else if (this.buddy && this.buddy.encoding === 'bits (base 0xf0000000)' && this.buddy.mask === (0xf0000080 | 0)) {
      // 4.18–5.0 (PG_balloon) and 5.1–6.8 built without CONFIG_HUGETLB_PAGE
      // (the key sat inside #ifdef CONFIG_HUGETLB_PAGE) use bit 0x100 next to
      // PG_buddy 0x80 but do not export it.
      this.offline = legacyOfflineMatcher();
      this.offlineDetection = 'fallback';
    } else {
      this.offline = undefined;
      this.offlineDetection = 'unavailable';
    }
    const slabValue = vi.number('PAGE_SLAB_MAPCOUNT_VALUE');
    this.slabType = slabValue !== undefined ? matcherFor(slabValue) : undefined;
    const unacceptedValue = vi.number('PAGE_UNACCEPTED_MAPCOUNT_VALUE');
    this.unaccepted = unacceptedValue !== undefined ? matcherFor(unacceptedValue) : undefined;

    const hugetlbValue = vi.number('PAGE_HUGETLB_MAPCOUNT_VALUE');
    const pgHugetlb = vi.number('PG_hugetlb');
    if (hugetlbValue !== undefined) {
      this.hugetlb = { kind: 'page-type', matcher: matcherFor(hugetlbValue) };
    } else if (pgHugetlb !== undefined && flagBit(pgHugetlb)) {
      this.hugetlb = { kind: 'flags-1', bit: flagBit(pgHugetlb)! };
    } else {
      // compound_dtor / compound_order live in the first tail page; folio
      // offsets (counted from the head) are accepted too.
      const tailOff = (pageName: string, folioName: string): number | undefined => {
        const p = vi.offset(pageName);
        if (p !== undefined) return p < this.size ? this.size + p : undefined;
        const f = vi.offset(folioName);
        return f !== undefined && f >= this.size && f < 2 * this.size ? f : undefined;
      };
      this.hugetlb = {
        kind: 'dtor',
        dtorOffset: tailOff('page.compound_dtor', 'folio._folio_dtor'),
        dtorValue: vi.number('HUGETLB_PAGE_DTOR'),
        orderOffset: tailOff('page.compound_order', 'folio._folio_order'),
      };
    }
    this.freeAreaLength = vi.length('zone.free_area');
    this.matchers = [this.buddy, this.offline, this.slabType, this.unaccepted].filter((m): m is PageTypeMatcher => m !== undefined);
    if (this.hugetlb.kind === 'page-type') this.matchers.push(this.hugetlb.matcher);
  }

  /** Every page-type matcher in use (for the exclusivity check). */
  private readonly matchers: PageTypeMatcher[];

  describe(): DecoderDescription {
    const m = (x: PageTypeMatcher | undefined): string =>
      x ? `0x${x.value.toString(16).padStart(8, '0')} (${x.encoding})` : 'not exported';
    let hugetlb: string;
    switch (this.hugetlb.kind) {
      case 'page-type':
        hugetlb = `page type ${m(this.hugetlb.matcher)}, order in _flags_1`;
        break;
      case 'flags-1':
        hugetlb = `PG_hugetlb bit ${this.hugetlb.bit.bit} in _flags_1, order in _flags_1`;
        break;
      default:
        hugetlb =
          this.hugetlb.dtorValue !== undefined && this.hugetlb.dtorOffset !== undefined
            ? `compound_dtor ${this.hugetlb.dtorValue}`
            : 'not detectable (no HUGETLB_PAGE_DTOR / compound_dtor)';
    }
    return {
      structPageSize: this.size,
      buddy: m(this.buddy),
      offline:
        this.offlineDetection === 'fallback'
          ? `bit 0x100 under base 0xf0000000 (PG_offline/PG_balloon; key not exported, detected by fallback)`
          : m(this.offline),
      offlineDetection: this.offlineDetection,
      slab: this.slabType ? `page type ${m(this.slabType)}` : this.slabBit ? `PG_slab bit ${this.slabBit.bit}` : 'not detectable',
      hugetlb,
      unaccepted: m(this.unaccepted),
    };
  }

  /**
   * Keys that a dump level needs and VMCOREINFO lacks, as human-readable
   * reasons. Empty means the level can be honoured exactly.
   */
  missingFor(level: number): string[] {
    const out: string[] = [];
    if (level & 6) {
      if (!this.lru) out.push('NUMBER(PG_lru) (cache pages, -d 2/4)');
      if (!this.private_) out.push('NUMBER(PG_private) (cache pages, -d 2/4)');
    }
    if (level & 14 && this.offMapping === undefined) out.push('OFFSET(page.mapping) (anonymous pages)');
    if (level & 16) {
      if (!this.buddy) out.push('NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) (free pages, -d 16)');
      if (this.offMapcount === undefined) out.push('OFFSET(page._mapcount) (free pages, -d 16)');
      if (this.offPrivate === undefined) out.push('OFFSET(page.private) (free pages, -d 16)');
    }
    return out;
  }

  /**
   * Decode `n` struct pages from `buf` (at byte `bufOff`), for pfns starting
   * at `pfn`, into `win` at index `at`.
   */
  decode(buf: Uint8Array, bufOff: number, pfn: number, n: number, win: PropWindow, at: number): void {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const size = this.size;
    const props = win.props;
    const corder = win.compoundOrder;
    const border = win.buddyOrder;
    const offFlags = this.offFlags;
    const offMap = this.offMapping;
    const offPriv = this.offPrivate;
    const offMc = this.offMapcount;
    const offHead = this.offCompoundHead;
    const test = (b: FlagBit | undefined, lo: number, hi: number): boolean =>
      b !== undefined && ((b.hi ? hi : lo) & b.mask) !== 0;
    const hs = this.hugetlb;
    const freeLen = this.freeAreaLength;

    for (let i = 0; i < n; i++) {
      const o = bufOff + i * size;
      const lo = dv.getUint32(o + offFlags, true);
      const hi = dv.getUint32(o + offFlags + 4, true);
      const pageType = offMc !== undefined ? dv.getInt32(o + offMc, true) : -1;
      let p = 0;

      const slab = (this.slabType !== undefined && matches(this.slabType, pageType)) || test(this.slabBit, lo, hi);
      if (slab) p |= Prop.SLAB;
      if (test(this.reserved, lo, hi)) p |= Prop.RESERVED;

      if (offHead !== undefined && (dv.getUint32(o + offHead, true) & 1) !== 0) p |= Prop.TAIL;

      // Compound head: order and hugetlb from the first tail page. As in
      // makedumpfile, a head in the last slot of a 512-entry block is not
      // examined (compound pages are aligned to their order).
      const cur = pfn + i;
      if (this.headMask && test(this.headMask, lo, hi)) {
        p |= Prop.HEAD;
        if (cur % 512 !== 511 && i + 1 < n) {
          const t = o + size;
          let order = 0;
          let huge = false;
          if (hs.kind === 'page-type') {
            order = dv.getUint8(t + offFlags);
            huge = matches(hs.matcher, pageType);
          } else if (hs.kind === 'flags-1') {
            const tlo = dv.getUint32(t + offFlags, true);
            const thi = dv.getUint32(t + offFlags + 4, true);
            order = tlo & 0xff;
            huge = test(hs.bit, tlo, thi);
          } else {
            if (hs.orderOffset !== undefined) order = dv.getUint8(o + hs.orderOffset);
            if (hs.dtorOffset !== undefined && hs.dtorValue !== undefined) huge = dv.getUint8(o + hs.dtorOffset) === hs.dtorValue;
          }
          if (order >= 64 || (order > 0 && cur % 2 ** order !== 0)) order = 0;
          corder[at + i] = order;
          if (huge) p |= Prop.HUGETLB;
        }
      }

      if (!slab && this.buddy && matches(this.buddy, pageType)) {
        p |= Prop.BUDDY;
        if (offPriv !== undefined) {
          const plo = dv.getUint32(o + offPriv, true);
          const phi = dv.getUint32(o + offPriv + 4, true);
          border[at + i] = phi !== 0 || (freeLen !== undefined ? plo >= freeLen : plo >= 64) ? NO_ORDER : plo;
        } else border[at + i] = NO_ORDER;
      }
      if (this.unaccepted && matches(this.unaccepted, pageType)) p |= Prop.UNACCEPTED;

      const cache = test(this.lru, lo, hi) || ((this.swapbacked === undefined || test(this.swapbacked, lo, hi)) && test(this.swapcache, lo, hi));
      if (cache) p |= Prop.CACHE;
      if (test(this.private_, lo, hi)) p |= Prop.PRIVATE;
      if (offMap !== undefined && !slab && (dv.getUint32(o + offMap, true) & 1) !== 0) p |= Prop.ANON;
      if (test(this.hwpoison, lo, hi)) p |= Prop.HWPOISON;
      if (!slab && this.offline && matches(this.offline, pageType)) {
        p |= this.offlineDetection === 'fallback' ? Prop.OFFLINE_FALLBACK : Prop.OFFLINE;
      }
      if (pageType < -128) {
        let types = 0;
        for (let k = 0; k < this.matchers.length; k++) if (matches(this.matchers[k]!, pageType)) types++;
        if (types > 1) p |= Prop.TYPE_OVERLAP;
      }
      props[at + i] = p;
    }
  }

  /** VMCOREINFO this decoder was built from. */
  get vmcoreinfo(): VmcoreInfo {
    return this.vi;
  }
}
