/** Small per-window scans shared by the pipelines. */
import { PfnState, type DumpReader } from '../formats/types.js';
import type { RamOracle } from '../ram/oracle.js';

/**
 * The input's pfn states for [w, w+n), with pfns at or above `limit` (a
 * flag source's pfnLimit: memory the kernel has no struct page for) made
 * holes.
 */
export async function kernelStates(reader: DumpReader, limit: number | undefined, w: number, n: number, states: Uint8Array): Promise<void> {
  await reader.pfnStates(w, n, states);
  if (limit !== undefined && w + n > limit) states.fill(PfnState.HOLE, Math.max(0, limit - w), n);
}

/** Whether any of the first n states is RAM. */
export function anyRam(states: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (states[i] !== PfnState.HOLE) return true;
  return false;
}

/**
 * Set out[i] = 1 for the RAM pfns of window [w, w+n) the oracle calls not
 * RAM, asking run by run (an audit: nothing is counted).
 */
export function markNotRam(oracle: RamOracle, w: number, n: number, states: Uint8Array, out: Uint8Array): void {
  for (let i = 0; i < n; ) {
    if (states[i] === PfnState.HOLE) {
      i++;
      continue;
    }
    const s = oracle.span(w + i, w + n);
    const k = Math.max(1, Math.min(s.count, n - i));
    if (!s.ram) out.fill(1, i, i + k);
    i += k;
  }
}
