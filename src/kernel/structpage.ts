/**
 * Decode struct page into page properties (props.ts), following the rules
 * makedumpfile 1.7.x applies in __exclude_unnecessary_pages, with the
 * encodings of every kernel era chosen from the VMCOREINFO keys present.
 */
import { DumpError } from '../core/errors.js';
import type { VmcoreInfo } from '../formats/vmcoreinfo.js';
import { NO_ORDER, Prop, type PropWindow } from './props.js';
import { legacyOfflineMatcher, matcherFor, type PageTypeMatcher } from './pagetypes.js';

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

const HUGE_PAGE_TYPE = 0;
const HUGE_FLAGS_1 = 1;
const HUGE_DTOR = 2;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Byte `k` of little-endian words. */
const byteAt = (words: Int32Array, k: number): number => (words[k >> 2]! >>> ((k & 3) << 3)) & 0xff;

/**
 * decode's tests as numbers: word indexes of the fields (-1: absent), the
 * low/high 32-bit masks of each flag bit (0: not exported, never set), and
 * each page type as (mask, want) ((0, 1) when not exported: never matches).
 */
interface Tests {
  fFlags: number;
  fMap: number;
  fPriv: number;
  fMc: number;
  fHead: number;
  slabLo: number;
  slabHi: number;
  resLo: number;
  resHi: number;
  headLo: number;
  headHi: number;
  lruLo: number;
  lruHi: number;
  privLo: number;
  privHi: number;
  swapcacheLo: number;
  swapcacheHi: number;
  swapbackedLo: number;
  swapbackedHi: number;
  /** PG_swapbacked not exported: PG_swapcache alone makes a cache page. */
  swapbackedAny: boolean;
  hwpLo: number;
  hwpHi: number;
  slabTM: number;
  slabTW: number;
  buddyM: number;
  buddyW: number;
  offlineM: number;
  offlineW: number;
  unaccM: number;
  unaccW: number;
  offlineProp: number;
  /** Buddy orders at or above it are invalid (LENGTH(zone.free_area), else 64). */
  freeLimit: number;
  hugeKind: number;
  hugeM: number;
  hugeW: number;
  hugeLo: number;
  hugeHi: number;
  /** Byte offsets from the head of compound_order / compound_dtor in the first tail (-1: none). */
  orderByte: number;
  dtorByte: number;
  dtorValue: number;
  typeMasks: Int32Array;
  typeWants: Int32Array;
}

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
    this.tests = this.flatTests(file);
  }

  /** What decode tests, as plain numbers (see Tests). */
  private readonly tests: Tests;

  private flatTests(file: string): Tests {
    // The kernel's compiler aligns struct page's fields (unsigned long,
    // pointers, atomic_t): an offset or size that is not a multiple of 4
    // is a corrupt VMCOREINFO, not a layout to honour.
    const fields: Array<[string, number | undefined]> = [
      ['SIZE(page)', this.size],
      ['OFFSET(page.flags)', this.offFlags],
      ['OFFSET(page.mapping)', this.offMapping],
      ['OFFSET(page.private)', this.offPrivate],
      ['OFFSET(page._mapcount)', this.offMapcount],
      ['OFFSET(page.compound_head)', this.offCompoundHead],
    ];
    for (const [name, v] of fields) {
      if (v !== undefined && v % 4 !== 0) throw new DumpError('DUMP_CORRUPT', `VMCOREINFO ${name}=${v} is not a multiple of 4 (struct page's fields are aligned)`, { file });
    }
    const lo = (b: FlagBit | undefined): number => (b && !b.hi ? b.mask | 0 : 0);
    const hi = (b: FlagBit | undefined): number => (b && b.hi ? b.mask | 0 : 0);
    const word = (off: number | undefined): number => (off === undefined ? -1 : off >> 2);
    const m = (x: PageTypeMatcher | undefined): [number, number] => (x ? [x.mask, x.want] : [0, 1]);
    const hs = this.hugetlb;
    const [slabTM, slabTW] = m(this.slabType);
    const [buddyM, buddyW] = m(this.buddy);
    const [offlineM, offlineW] = m(this.offline);
    const [unaccM, unaccW] = m(this.unaccepted);
    const [hugeM, hugeW] = m(hs.kind === 'page-type' ? hs.matcher : undefined);
    const hugeBit = hs.kind === 'flags-1' ? hs.bit : undefined;
    return {
      fFlags: this.offFlags >> 2,
      fMap: word(this.offMapping),
      fPriv: word(this.offPrivate),
      fMc: word(this.offMapcount),
      fHead: word(this.offCompoundHead),
      slabLo: lo(this.slabBit),
      slabHi: hi(this.slabBit),
      resLo: lo(this.reserved),
      resHi: hi(this.reserved),
      headLo: lo(this.headMask),
      headHi: hi(this.headMask),
      lruLo: lo(this.lru),
      lruHi: hi(this.lru),
      privLo: lo(this.private_),
      privHi: hi(this.private_),
      swapcacheLo: lo(this.swapcache),
      swapcacheHi: hi(this.swapcache),
      swapbackedLo: lo(this.swapbacked),
      swapbackedHi: hi(this.swapbacked),
      swapbackedAny: this.swapbacked === undefined,
      hwpLo: lo(this.hwpoison),
      hwpHi: hi(this.hwpoison),
      slabTM,
      slabTW,
      buddyM,
      buddyW,
      offlineM,
      offlineW,
      unaccM,
      unaccW,
      offlineProp: this.offlineDetection === 'fallback' ? Prop.OFFLINE_FALLBACK : Prop.OFFLINE,
      freeLimit: this.freeAreaLength ?? 64,
      hugeKind: hs.kind === 'page-type' ? HUGE_PAGE_TYPE : hs.kind === 'flags-1' ? HUGE_FLAGS_1 : HUGE_DTOR,
      hugeM,
      hugeW,
      hugeLo: lo(hugeBit),
      hugeHi: hi(hugeBit),
      orderByte: hs.kind === 'dtor' && hs.orderOffset !== undefined ? hs.orderOffset : -1,
      dtorByte: hs.kind === 'dtor' && hs.dtorOffset !== undefined && hs.dtorValue !== undefined ? hs.dtorOffset : -1,
      dtorValue: hs.kind === 'dtor' ? (hs.dtorValue ?? -1) : -1,
      typeMasks: Int32Array.from(this.matchers, (x) => x.mask),
      typeWants: Int32Array.from(this.matchers, (x) => x.want),
    };
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
   *
   * The hot loop of every pass over mem_map (a pfn at a time, millions of
   * them): the struct pages are read as 32-bit words of one Int32Array view
   * and every test is a mask or a compare on locals set up by the
   * constructor (`Tests`), not a DataView call or a closure per field.
   */
  decode(buf: Uint8Array, bufOff: number, pfn: number, n: number, win: PropWindow, at: number): void {
    const words = this.wordsOf(buf, bufOff, n);
    const t = this.tests;
    const sizeW = this.size >> 2;
    const props = win.props;
    const corder = win.compoundOrder;
    const border = win.buddyOrder;
    const { fFlags, fMap, fPriv, fMc, fHead } = t;
    const { slabLo, slabHi, resLo, resHi, headLo, headHi, lruLo, lruHi, privLo, privHi } = t;
    const { swapcacheLo, swapcacheHi, swapbackedLo, swapbackedHi, swapbackedAny, hwpLo, hwpHi } = t;
    const { slabTM, slabTW, buddyM, buddyW, offlineM, offlineW, unaccM, unaccW, offlineProp, freeLimit } = t;
    const { hugeKind, hugeM, hugeW, hugeLo, hugeHi, orderByte, dtorByte, dtorValue } = t;
    const typeMasks = t.typeMasks;
    const typeWants = t.typeWants;

    for (let i = 0, b = 0; i < n; i++, b += sizeW) {
      const lo = words[b + fFlags]!;
      const hi = words[b + fFlags + 1]!;
      const pageType = fMc >= 0 ? words[b + fMc]! : -1;
      let p = 0;

      const slab = (pageType & slabTM) === slabTW || ((lo & slabLo) | (hi & slabHi)) !== 0;
      if (slab) p |= Prop.SLAB;
      if (((lo & resLo) | (hi & resHi)) !== 0) p |= Prop.RESERVED;

      if (fHead >= 0 && (words[b + fHead]! & 1) !== 0) p |= Prop.TAIL;

      // Compound head: order and hugetlb from the first tail page. As in
      // makedumpfile, a head in the last slot of a 512-entry block is not
      // examined (compound pages are aligned to their order).
      if (((lo & headLo) | (hi & headHi)) !== 0) {
        p |= Prop.HEAD;
        const cur = pfn + i;
        if (cur % 512 !== 511 && i + 1 < n) {
          const tb = b + sizeW;
          let order = 0;
          let huge = false;
          if (hugeKind === HUGE_PAGE_TYPE) {
            order = words[tb + fFlags]! & 0xff;
            huge = (pageType & hugeM) === hugeW;
          } else if (hugeKind === HUGE_FLAGS_1) {
            const tlo = words[tb + fFlags]!;
            order = tlo & 0xff;
            huge = ((tlo & hugeLo) | (words[tb + fFlags + 1]! & hugeHi)) !== 0;
          } else {
            if (orderByte >= 0) order = byteAt(words, (b << 2) + orderByte);
            if (dtorByte >= 0) huge = byteAt(words, (b << 2) + dtorByte) === dtorValue;
          }
          if (order >= 64 || (order > 0 && cur % 2 ** order !== 0)) order = 0;
          corder[at + i] = order;
          if (huge) p |= Prop.HUGETLB;
        }
      }

      if (!slab && (pageType & buddyM) === buddyW) {
        p |= Prop.BUDDY;
        if (fPriv >= 0) {
          const plo = words[b + fPriv]! >>> 0;
          border[at + i] = words[b + fPriv + 1]! !== 0 || plo >= freeLimit ? NO_ORDER : plo;
        } else border[at + i] = NO_ORDER;
      }
      if ((pageType & unaccM) === unaccW) p |= Prop.UNACCEPTED;

      const cache =
        ((lo & lruLo) | (hi & lruHi)) !== 0 ||
        ((swapbackedAny || ((lo & swapbackedLo) | (hi & swapbackedHi)) !== 0) && ((lo & swapcacheLo) | (hi & swapcacheHi)) !== 0);
      if (cache) p |= Prop.CACHE;
      if (((lo & privLo) | (hi & privHi)) !== 0) p |= Prop.PRIVATE;
      if (fMap >= 0 && !slab && (words[b + fMap]! & 1) !== 0) p |= Prop.ANON;
      if (((lo & hwpLo) | (hi & hwpHi)) !== 0) p |= Prop.HWPOISON;
      if (!slab && (pageType & offlineM) === offlineW) p |= offlineProp;
      if (pageType < -128) {
        let types = 0;
        for (let k = 0; k < typeMasks.length; k++) if ((pageType & typeMasks[k]!) === typeWants[k]!) types++;
        if (types > 1) p |= Prop.TYPE_OVERLAP;
      }
      props[at + i] = p;
    }
  }

  /**
   * The struct pages of `buf` from `bufOff` as little-endian 32-bit words:
   * a view of `buf` itself when it is 4-byte aligned on a little-endian
   * host (every caller in dumpsieve), else a copy.
   */
  private wordsOf(buf: Uint8Array, bufOff: number, n: number): Int32Array {
    const len = (n * this.size) >> 2;
    const byteOffset = buf.byteOffset + bufOff;
    if (LITTLE_ENDIAN && (byteOffset & 3) === 0) return new Int32Array(buf.buffer, byteOffset, len);
    if (this.scratch.length < len) this.scratch = new Int32Array(len);
    const dv = new DataView(buf.buffer, byteOffset, len << 2);
    for (let k = 0; k < len; k++) this.scratch[k] = dv.getInt32(k << 2, true);
    return this.scratch;
  }

  private scratch = new Int32Array(0);

  /** VMCOREINFO this decoder was built from. */
  get vmcoreinfo(): VmcoreInfo {
    return this.vi;
  }
}
