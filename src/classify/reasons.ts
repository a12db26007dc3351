/**
 * Why a pfn is or is not in the output. One byte per pfn per window; the
 * same codes appear in the `--reasons` map and in the reports.
 */
export const Reason = {
  /** Not RAM in the input (no PT_LOAD, not in the 1st bitmap). */
  HOLE: 0,
  /** Kept: written to the output. */
  KEPT: 1,
  /** Excluded (dump level bit 1): all-zero content. Decided while writing. */
  ZERO: 2,
  /** Excluded (bit 2 or 4): page cache without PG_private. */
  CACHE: 3,
  /** Excluded (bit 4): page cache with PG_private. */
  CACHE_PRIVATE: 4,
  /** Excluded (bit 8): anonymous or hugetlbfs user data. */
  USER: 5,
  /** Excluded (bit 16): free buddy pages. */
  FREE: 6,
  /** Excluded (bit 16): unaccepted memory. */
  UNACCEPTED: 7,
  /** Excluded always: hardware-poisoned. */
  HWPOISON: 8,
  /** Excluded always: logically offline (PG_offline / PG_balloon). */
  OFFLINE: 9,
  /** Excluded always: the RAM oracle says the hypervisor does not back it. */
  NOT_RAM: 10,
  /** RAM without data in the input (already excluded there). */
  ABSENT: 11,
} as const;
export type ReasonCode = (typeof Reason)[keyof typeof Reason];

export const REASON_COUNT = 12;

/** Stable names (reports, JSON, the reasons map). */
export const REASON_NAMES: readonly string[] = [
  'hole',
  'kept',
  'zero',
  'cache',
  'cache-private',
  'user',
  'free',
  'unaccepted',
  'hwpoison',
  'offline',
  'not-ram',
  'absent',
];

export function reasonByName(name: string): ReasonCode | undefined {
  const i = REASON_NAMES.indexOf(name);
  return i < 0 ? undefined : (i as ReasonCode);
}

/**
 * Content rules judge what a page holds (zero, cache, user data): a
 * protected range (the kernel image, --protect) overrides them.
 */
export function isContentReason(r: number): boolean {
  return r === Reason.ZERO || r === Reason.CACHE || r === Reason.CACHE_PRIVATE || r === Reason.USER;
}

/**
 * Status rules judge what a page is (free, unaccepted, hwpoison, offline,
 * not backed): reading such a page is stale at best and fatal at worst
 * (a hypercall per pfn, a fabricated page, a machine check, a Hyper-V
 * crash), so they win over every protection, option and output format.
 */
export function isStatusReason(r: number): boolean {
  return r === Reason.FREE || r === Reason.UNACCEPTED || r === Reason.HWPOISON || r === Reason.OFFLINE || r === Reason.NOT_RAM;
}

/** makedumpfile's dump-level bits. */
export const DL = {
  ZERO: 1,
  CACHE: 2,
  CACHE_PRIVATE: 4,
  USER: 8,
  FREE: 16,
} as const;
