/**
 * Checked integer helpers. File offsets, physical addresses and pfns are
 * plain numbers, proven to be safe integers where they enter the program;
 * kernel virtual addresses are bigint.
 */
import { DumpError, type DumpErrorContext } from './errors.js';

const TWO32 = 0x1_0000_0000;

/** A u64 at `off` as a number; throws if it is not a safe integer. */
export function u64(dv: DataView, off: number, what: string, ctx: DumpErrorContext = {}): number {
  const lo = dv.getUint32(off, true);
  const hi = dv.getUint32(off + 4, true);
  if (hi >= 0x20_0000) {
    throw new DumpError('DUMP_CORRUPT', `${what} is ${hex64(hi, lo)}, beyond 2^53`, ctx);
  }
  return hi * TWO32 + lo;
}

/** An i64 at `off` as a number; throws if outside the safe range. */
export function i64(dv: DataView, off: number, what: string, ctx: DumpErrorContext = {}): number {
  const v = dv.getBigInt64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new DumpError('DUMP_CORRUPT', `${what} is ${v}, beyond 2^53`, ctx);
  }
  return Number(v);
}

function hex64(hi: number, lo: number): string {
  return `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`;
}

/** Assert a header-derived quantity is within [0, max]. */
export function bounded(value: number, max: number, what: string, ctx: DumpErrorContext = {}): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DumpError('DUMP_CORRUPT', `${what} is ${value}, not a non-negative integer`, ctx);
  }
  if (value > max) {
    throw new DumpError('DUMP_LIMIT_EXCEEDED', `${what} is ${value}, above the limit of ${max}`, ctx);
  }
  return value;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 0x4000_0000;
}

/** Write a non-negative safe integer as u64 LE. */
export function setU64(dv: DataView, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${v} is not a u64 value`);
  dv.setUint32(off, v % TWO32, true);
  dv.setUint32(off + 4, Math.floor(v / TWO32), true);
}

/** Write a signed safe integer as i64 LE. */
export function setI64(dv: DataView, off: number, v: number): void {
  if (!Number.isSafeInteger(v)) throw new RangeError(`${v} is not an integer value`);
  dv.setBigInt64(off, BigInt(v), true);
}
