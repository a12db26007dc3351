/** Integer hashing without BigInt, for per-page decisions. */

/** Avalanche a 32-bit value: murmur3's finaliser (every input bit reaches every output bit). */
export function fmix32(h: number): number {
  h >>>= 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
