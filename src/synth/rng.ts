/**
 * Deterministic randomness for synthetic guests: a small seeded generator
 * for planning (runs, placements) and a stateless hash of (seed, pfn) for
 * page contents, so any page can be regenerated on its own.
 *
 * 32-bit integer arithmetic only (Math.imul), no BigInt: both sit in
 * per-page loops.
 */
import { fmix32 } from '../core/hash.js';

export { fmix32 };

const TWO32 = 0x1_0000_0000;

/** Hash of (seed, a, b) as an unsigned 32-bit value. */
export function hash3(seed: number, a: number, b: number): number {
  let h = fmix32((seed ^ 0x9e3779b9) >>> 0);
  h = fmix32((h ^ Math.imul(a | 0, 0xcc9e2d51)) >>> 0);
  h = fmix32((h + Math.imul(b | 0, 0x1b873593)) >>> 0);
  return h;
}

/** Hash of (seed, pfn) for any safe-integer pfn. */
export function pfnHash(seed: number, pfn: number, salt = 0): number {
  const lo = pfn % TWO32;
  const hi = (pfn - lo) / TWO32;
  return hash3((seed ^ salt) >>> 0, lo, hi);
}

/** A seeded generator (sfc32 state, splitmix-style seeding). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    this.a = fmix32((seed ^ 0x243f6a88) >>> 0);
    this.b = fmix32((seed + 0x85a308d3 + stream) >>> 0);
    this.c = fmix32((stream ^ 0x13198a2e) >>> 0);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A derived, independent generator (for one scenario feature). */
  fork(stream: number): Rng {
    return new Rng(this.u32(), stream);
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / TWO32;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  /**
   * A run length with a roughly log-uniform spread between min and max
   * (many short runs, some long ones), as allocations look in a real guest.
   */
  logLength(min: number, max: number): number {
    if (max <= min) return min;
    const l = Math.log(min) + this.float() * (Math.log(max + 1) - Math.log(min));
    return Math.max(min, Math.min(max, Math.floor(Math.exp(l))));
  }

  /** Index chosen with probability proportional to weights[i]. */
  pick(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}
