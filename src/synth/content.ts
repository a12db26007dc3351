/**
 * Page contents of a synthetic guest: fast, deterministic from (seed, pfn)
 * and regenerable page by page. A pool of template pages of varied
 * compressibility is built once per seed; a page is a copy of one template,
 * chosen by a hash of (seed, pfn) with weights that depend on the page's
 * class, with the pfn and a hash stamped into its first 16 bytes so that
 * every page is distinct.
 *
 * Template kinds, from least to most compressible:
 *   random   incompressible (compressed files, encrypted or random data)
 *   text     words and punctuation (file cache of text)
 *   pointers u64 kernel pointers into the direct map (kernel data, page tables)
 *   struct   small structures: pointers, small counters, zero padding
 *   pattern  a short pattern repeated with rare changes (initialised buffers)
 *   sparse   almost all zero, a few non-zero words
 */
import { Rng, pfnHash } from './rng.js';
import { PAGE_SIZE, type PageClass } from './plan.js';

export const TEMPLATE_KINDS = ['random', 'text', 'pointers', 'struct', 'pattern', 'sparse'] as const;
export type TemplateKind = (typeof TEMPLATE_KINDS)[number];

const PER_KIND = 8;
const WORDS = [
  'the', 'of', 'and', 'to', 'in', 'is', 'that', 'for', 'it', 'as', 'with', 'was', 'on', 'be', 'at', 'by',
  'kernel', 'memory', 'page', 'balloon', 'offline', 'section', 'device', 'return', 'struct', 'static',
  'unsigned', 'long', 'int', 'void', 'const', 'if', 'else', 'while', 'error', 'config', 'value', 'data',
];

/** Weights over TEMPLATE_KINDS per class family. */
const WEIGHTS: Record<string, readonly number[]> = {
  kernel: [5, 10, 30, 25, 5, 25],
  slab: [0, 10, 30, 30, 5, 25],
  cache: [35, 45, 0, 5, 5, 10],
  user: [30, 10, 5, 5, 20, 30],
  stale: [20, 20, 10, 10, 10, 30],
};

function familyOf(cls: PageClass): string {
  switch (cls) {
    case 'slab':
    case 'pgtable':
      return 'slab';
    case 'cache':
    case 'cache-private':
      return 'cache';
    case 'anon':
    case 'thp':
    case 'hugetlb':
      return 'user';
    case 'free':
    case 'offline':
    case 'unplugged':
    case 'never-onlined':
      return 'stale';
    default:
      return 'kernel';
  }
}

export class ContentGenerator {
  readonly seed: number;
  private readonly templates: Buffer;
  /** Per family: 256-entry table from a hash byte to a kind index. */
  private readonly pickTable = new Map<string, Uint8Array>();

  constructor(seed: number) {
    this.seed = seed >>> 0;
    const rng = new Rng(this.seed, 0xc0);
    this.templates = Buffer.alloc(TEMPLATE_KINDS.length * PER_KIND * PAGE_SIZE);
    TEMPLATE_KINDS.forEach((kind, k) => {
      for (let i = 0; i < PER_KIND; i++) {
        const off = (k * PER_KIND + i) * PAGE_SIZE;
        makeTemplate(kind, rng, this.templates.subarray(off, off + PAGE_SIZE));
      }
    });
    for (const [fam, w] of Object.entries(WEIGHTS)) {
      const t = new Uint8Array(256);
      const total = w.reduce((a, x) => a + x, 0);
      let acc = 0;
      let k = 0;
      for (let i = 0; i < 256; i++) {
        while (k < w.length - 1 && i >= Math.round(((acc + w[k]!) * 256) / total)) {
          acc += w[k]!;
          k++;
        }
        t[i] = k;
      }
      this.pickTable.set(fam, t);
    }
  }

  /** The template kind a data page of class `cls` at `pfn` is made from. */
  kindOf(pfn: number, cls: PageClass): TemplateKind {
    const h = pfnHash(this.seed, pfn);
    return TEMPLATE_KINDS[this.pickTable.get(familyOf(cls))![h & 0xff]!]!;
  }

  /** Write the data page of `pfn` (class `cls`) into dst at off. */
  fill(pfn: number, cls: PageClass, dst: Uint8Array, off: number): void {
    const h = pfnHash(this.seed, pfn);
    const kind = this.pickTable.get(familyOf(cls))![h & 0xff]!;
    const idx = kind * PER_KIND + ((h >>> 8) % PER_KIND);
    this.templates.copy(dst, off, idx * PAGE_SIZE, (idx + 1) * PAGE_SIZE);
    stamp(dst, off, pfn, h);
  }

  /** Fill `count` consecutive data pages. */
  fillRun(pfn: number, count: number, cls: PageClass, dst: Uint8Array, off: number): void {
    const table = this.pickTable.get(familyOf(cls))!;
    for (let i = 0; i < count; i++) {
      const p = pfn + i;
      const h = pfnHash(this.seed, p);
      const idx = table[h & 0xff]! * PER_KIND + ((h >>> 8) % PER_KIND);
      const o = off + i * PAGE_SIZE;
      this.templates.copy(dst, o, idx * PAGE_SIZE, (idx + 1) * PAGE_SIZE);
      stamp(dst, o, p, h);
    }
  }
}

/** Bytes 0-7: the pfn (u64 LE); 8-11: the page hash; 12-15: "DSvt". */
function stamp(dst: Uint8Array, off: number, pfn: number, h: number): void {
  const lo = pfn % 0x1_0000_0000;
  const hi = (pfn - lo) / 0x1_0000_0000;
  dst[off] = lo & 0xff;
  dst[off + 1] = (lo >>> 8) & 0xff;
  dst[off + 2] = (lo >>> 16) & 0xff;
  dst[off + 3] = lo >>> 24;
  dst[off + 4] = hi & 0xff;
  dst[off + 5] = (hi >>> 8) & 0xff;
  dst[off + 6] = (hi >>> 16) & 0xff;
  dst[off + 7] = hi >>> 24;
  dst[off + 8] = h & 0xff;
  dst[off + 9] = (h >>> 8) & 0xff;
  dst[off + 10] = (h >>> 16) & 0xff;
  dst[off + 11] = h >>> 24;
  dst[off + 12] = 0x44;
  dst[off + 13] = 0x53;
  dst[off + 14] = 0x76;
  dst[off + 15] = 0x74;
}

/** The pfn stamped into a data page (for checks that do not trust the generator). */
export function stampedPfn(page: Uint8Array): number {
  const dv = new DataView(page.buffer, page.byteOffset, 8);
  return dv.getUint32(4, true) * 0x1_0000_0000 + dv.getUint32(0, true);
}

function makeTemplate(kind: TemplateKind, rng: Rng, t: Uint8Array): void {
  const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
  switch (kind) {
    case 'random':
      for (let i = 0; i < PAGE_SIZE; i += 4) dv.setUint32(i, rng.u32(), true);
      return;
    case 'text': {
      let i = 0;
      while (i < PAGE_SIZE) {
        const w = WORDS[rng.int(0, WORDS.length - 1)]!;
        const sep = rng.chance(0.08) ? '.\n' : rng.chance(0.1) ? ', ' : ' ';
        const s = w + sep;
        for (let j = 0; j < s.length && i < PAGE_SIZE; j++) t[i++] = s.charCodeAt(j);
      }
      return;
    }
    case 'pointers': {
      const base = rng.u32() & 0x0fff_f000;
      for (let i = 0; i < PAGE_SIZE; i += 8) {
        if (rng.chance(0.15)) continue;
        dv.setUint32(i, (base + (rng.int(0, 4095) << 6)) >>> 0, true);
        dv.setUint32(i + 4, 0xffff8880, true);
      }
      return;
    }
    case 'struct': {
      for (let i = 0; i < PAGE_SIZE; i += 64) {
        dv.setUint32(i, (0x1000_0000 + rng.int(0, 0xffff) * 64) >>> 0, true);
        dv.setUint32(i + 4, 0xffff8880, true);
        dv.setUint32(i + 8, rng.int(0, 100), true);
        dv.setUint32(i + 16, rng.int(0, 3), true);
        if (rng.chance(0.5)) dv.setUint32(i + 24, rng.u32(), true);
      }
      return;
    }
    case 'pattern': {
      const pat = new Uint8Array(32);
      for (let i = 0; i < 32; i++) pat[i] = rng.int(0, 255);
      for (let i = 0; i < PAGE_SIZE; i += 32) t.set(pat, i);
      for (let n = rng.int(1, 6); n > 0; n--) t[rng.int(0, PAGE_SIZE - 1)] = rng.int(1, 255);
      return;
    }
    case 'sparse': {
      for (let n = rng.int(4, 40); n > 0; n--) dv.setUint32(rng.int(4, PAGE_SIZE / 4 - 1) * 4, rng.u32() | 1, true);
      return;
    }
  }
}
