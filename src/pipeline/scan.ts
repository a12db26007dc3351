/**
 * The window scan every pass iterates: the pfns [0, maxPfn) in windows of
 * WINDOW pfns, each with the input's states and, where the window holds
 * RAM and a page-flag source exists, the decoded page properties. Buffers
 * are reused between windows: a window is valid until the next one is
 * asked for. Also the small run helpers the passes share.
 */
import { PfnState, type DumpReader } from '../formats/types.js';
import type { PageFlagSource } from '../classify/flagsource.js';
import { PropWindow } from '../kernel/props.js';
import type { RamOracle } from '../ram/oracle.js';

/** Pfns per window: a 128 MiB section of 4 KiB pages; a multiple of 8 and of 512. */
export const WINDOW = 32768;

export interface ScanWindow {
  start: number;
  count: number;
  /** PfnState per pfn; pfns past the kernel's memmap are holes. */
  states: Uint8Array;
  /** Whether any pfn of the window is RAM (a window of holes has no properties). */
  ram: boolean;
  /** Page properties when the window holds RAM and a flag source exists, else null. */
  props: PropWindow | null;
}

export interface ScanProgress {
  done: number;
  total: number;
}

export class WindowScan {
  /** One past the last pfn scanned: the input's max pfn, cut where the kernel's memmap ends. */
  readonly maxPfn: number;
  private readonly states = new Uint8Array(WINDOW);
  private readonly props: PropWindow | null;

  constructor(
    private readonly reader: DumpReader,
    private readonly flags: PageFlagSource | undefined,
  ) {
    this.maxPfn = Math.min(reader.info.maxPfn, flags?.pfnLimit ?? Infinity);
    this.props = flags ? new PropWindow(WINDOW) : null;
  }

  /** Every window of [0, maxPfn), in order (holes too: bitmaps need them). */
  async *windows(onProgress?: (p: ScanProgress) => void): AsyncGenerator<ScanWindow> {
    const max = this.maxPfn;
    const win: ScanWindow = { start: 0, count: 0, states: this.states, ram: false, props: null };
    for (let w = 0; w < max; w += WINDOW) {
      const n = Math.min(WINDOW, max - w);
      onProgress?.({ done: w, total: max });
      await kernelStates(this.reader, this.flags?.pfnLimit, w, n, this.states);
      win.start = w;
      win.count = n;
      win.ram = anyRam(this.states, n);
      win.props = null;
      if (win.ram && this.flags && this.props) {
        this.props.reset(w, n);
        await this.flags.fill(this.props);
        win.props = this.props;
      }
      yield win;
    }
    onProgress?.({ done: max, total: max });
  }
}

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

/** Maximal runs [i, j) of `value` in the first n entries of `a`. */
export function* runsOf(a: Uint8Array, n: number, value: number): Generator<[number, number]> {
  for (let i = 0; i < n; ) {
    if (a[i] !== value) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && a[j] === value) j++;
    yield [i, j];
    i = j;
  }
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
