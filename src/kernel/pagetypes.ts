/**
 * Page-type matching, data-driven from the VMCOREINFO values (never from
 * the version string). The shape of an exported value tells its encoding:
 *
 * - 4.18–6.10: page_type = ~flag under PAGE_TYPE_BASE 0xf0000000
 *   (buddy ~0x80 = -129, offline ~0x100 = -257, hugetlb ~0x800, slab ~0x1000).
 *   Since Linux commit 6e292b9be7f4 ("mm: split page_type out from _mapcount").
 * - 6.11: ~flag under PAGE_TYPE_BASE 0x80000000, flags in bits 24–30
 *   (buddy 0xbfffffff, offline 0xdfffffff); the low 16 bits may be reused
 *   by the page's owner ("mm: allow reuse of the lower 16 bit of the page
 *   type with an actual type").
 * - 6.12+: one type per page in the top byte, PGTY_x << 24 (buddy 0xf0,
 *   offline 0xf1, hugetlb 0xf4, slab 0xf5, unaccepted 0xf7); the low 24 bits
 *   belong to the owner. Since Linux commit 4ffca5a96678 ("mm: support only
 *   one page_type per page").
 *
 * A matcher is `(page_type & mask) === want`: the kernel's own PageType()
 * test for the bit encodings, the top-byte test for PGTY, exact equality
 * otherwise (e.g. the pre-4.18 buddy value -128). For the values the kernel
 * writes these agree with makedumpfile's exact comparison; they differ only
 * where an owner uses the low bits (6.11+), where makedumpfile 1.7.x misses
 * the page.
 */

export interface PageTypeMatcher {
  mask: number;
  want: number;
  /** 'bits (base 0xf0000000)', 'bits (base 0x80000000)', 'top byte', 'exact'. */
  encoding: string;
  /** The 32-bit pattern of the exported value. */
  value: number;
}

export function matcherFor(exported: number): PageTypeMatcher {
  const v = exported >>> 0;
  if ((v & 0x00ffffff) === 0 && v >>> 24 >= 0xf0) {
    return { mask: 0xff000000 | 0, want: v | 0, encoding: 'top byte (PGTY)', value: v };
  }
  const flag = ~v >>> 0;
  if (flag !== 0 && (flag & (flag - 1)) === 0) {
    const base = flag >= 0x0100_0000 ? 0x8000_0000 : 0xf000_0000;
    return {
      mask: (base | flag) | 0,
      want: base | 0,
      encoding: `bits (base 0x${base.toString(16)})`,
      value: v,
    };
  }
  return { mask: -1, want: v | 0, encoding: 'exact', value: v };
}

/** The page_type bit the kernel used for offline/balloon pages in 4.18–6.10. */
export const LEGACY_OFFLINE_FLAG = 0x100;

/** A matcher for the legacy offline/balloon bit under base 0xf0000000. */
export function legacyOfflineMatcher(): PageTypeMatcher {
  return { mask: (0xf000_0000 | LEGACY_OFFLINE_FLAG) | 0, want: 0xf000_0000 | 0, encoding: 'bits (base 0xf0000000)', value: ~LEGACY_OFFLINE_FLAG >>> 0 };
}

export function matches(m: PageTypeMatcher, pageType: number): boolean {
  return (pageType & m.mask) === m.want;
}
