/**
 * pfn ranges in human output, one convention everywhere: half-open and hex,
 * `[0x100, 0x200)` — the first pfn in the range and the first one after it,
 * as the kernel's and the library's [start, end) ranges are.
 */
import { formatRange } from '../core/rangeset.js';

export const pfnRange = formatRange;

/** Ranges separated by spaces, then `… (+N more)` for those not listed. */
export function pfnRanges(ranges: ReadonlyArray<readonly [number, number]>, more = 0): string {
  const parts = ranges.map(([s, e]) => pfnRange(s, e));
  if (more > 0) parts.push(`… (+${more} more)`);
  return parts.join(' ');
}
