/**
 * The stub kernel a synthetic guest carries so that dump tools can walk
 * it: x86_64 4-level page tables from init_top_pgt (1 GiB direct map,
 * 2 MiB kernel-text and vmemmap mappings), init_uts_ns, node_online_map,
 * the mem_section tree (SPARSEMEM_EXTREME + VMEMMAP) or a FLATMEM mem_map,
 * and the struct page array. This file places those structures in guest
 * physical memory and renders any of their pages on demand.
 *
 * Placement (physical, kbase = 16 MiB + phys_base, as a default x86_64
 * kernel loads at CONFIG_PHYSICAL_START plus the relocation):
 *   kbase + 0      init_top_pgt = swapper_pg_dir = _stext
 *   kbase + 1 page level3_kernel_pgt      (PGD[511])
 *   kbase + 2      level2_kernel_pgt      (2 MiB pages over the image)
 *   kbase + 3      init_uts_ns; node_online_map at +0x200; mem_map pointer at +0x300
 *   kbase + 4      empty_zero_page
 *   …              rest of the kernel image (text/data/bss/brk) up to _end,
 *                  with the spans freed after boot (init sections, the
 *                  rodata gaps) and the tail past _end up to the next
 *                  2 MiB boundary given back to the page allocator: those
 *                  are ordinary pages the kernel-text mapping still covers
 *   mapping end    direct-map PUD pages, vmemmap PUD/PMD pages, mem_section
 *                  roots and arrays, mem_section_usage (early memblock allocations)
 *   next 2 MiB     struct pages: one 2 MiB chunk per present section (mapped
 *                  by one vmemmap PMD entry), or the FLATMEM mem_map
 */
import { UsageError } from '../core/errors.js';
import type { EraDef } from './eras.js';
import { PAGES_PER_SECTION, PAGE_SIZE } from './plan.js';

export const KERNEL_TEXT_BASE = 0xffffffff80000000n; // __START_KERNEL_map
export const PAGE_OFFSET = 0xffff888000000000n; // __PAGE_OFFSET_BASE_L4
export const VMEMMAP_START = 0xffffea0000000000n; // __VMEMMAP_BASE_L4
export const VMALLOC_START = 0xffffc90000000000n; // __VMALLOC_BASE_L4
export const STRUCT_PAGE_SIZE = 64;
/** Where an x86_64 kernel is loaded (CONFIG_PHYSICAL_START 0x1000000). */
export const PHYSICAL_START = 0x100_0000;
export const SECTION_SIZE_BITS = 27;
export const MAX_PHYSMEM_BITS = 46;
/** SIZE(mem_section) without CONFIG_PAGE_EXTENSION, and the root count it gives. */
export const MEM_SECTION_SIZE = 16;
export const SECTIONS_PER_ROOT = PAGE_SIZE / MEM_SECTION_SIZE;
export const NR_SECTION_ROOTS = 2 ** (MAX_PHYSMEM_BITS - SECTION_SIZE_BITS) / SECTIONS_PER_ROOT;
/** SIZE(nodemask_t) with NODES_SHIFT 10. */
export const NODEMASK_SIZE = 128;

const TWO32 = 0x1_0000_0000;
const GiB = 2 ** 30;
const MiB2 = 2 ** 21;
const PAGES_2M = MiB2 / PAGE_SIZE;

/** Page-table entry bits. */
const PTE_KERNPG_TABLE = 0x63; // PRESENT | RW | ACCESSED | DIRTY
const PTE_LARGE = 0x1e3; // PRESENT | RW | ACCESSED | DIRTY | PSE | GLOBAL
const PTE_NX_HI = 0x8000_0000; // bit 63 in the high word

export type MemoryModel = 'sparsemem' | 'flatmem';

/** A System RAM resource (one PT_LOAD each): boot memory or hot-added memory. */
export interface RamRange {
  start: number;
  end: number;
  kind: 'boot' | 'hotplug';
}

/** A ZONE_DEVICE range (memremap_pages): sections present, not System RAM. */
export interface DeviceRange {
  start: number;
  end: number;
  owner: string;
}

/** A section's state in the mem_section tree. */
export interface SectionInfo {
  nr: number;
  flags: number;
  /** Index of its 2 MiB struct-page chunk. */
  chunk: number;
}

export interface LayoutOptions {
  era: EraDef;
  model: MemoryModel;
  physBase: number;
  /** RAM the kernel knows (System RAM, including the crash kernel reservation). */
  ram: readonly RamRange[];
  devices: readonly DeviceRange[];
  /** Bytes the kernel-text mapping covers (a multiple of 2 MiB). */
  imageSize: number;
  /**
   * Where the image proper ends and which of its spans were freed after
   * boot, in pages from the image start (default: the whole mapping, none freed).
   */
  image?: ImagePlan | undefined;
  /** nodename in init_uts_ns. */
  nodename: string;
}

/** The kernel image inside its 2 MiB mapping. */
export interface ImagePlan {
  /** _end, page-aligned, in pages from the image start (at most the mapping). */
  endPages: number;
  /** Spans freed after boot ([offset, count) in pages from the image start), inside [IMAGE_FIXED_PAGES, endPages). */
  freed: Array<[number, number]>;
}

/** Pages at the image start holding the stub's structures (page tables, utsname, the zero page). */
export const IMAGE_FIXED_PAGES = 5;

/** Which structure a metadata page holds. */
export type MetaKind =
  | { kind: 'pgd' }
  | { kind: 'pud-kernel' }
  | { kind: 'pmd-kernel' }
  | { kind: 'uts' }
  | { kind: 'pud-direct'; index: number }
  | { kind: 'pud-vmemmap' }
  | { kind: 'pmd-vmemmap'; slot: number }
  | { kind: 'section-roots'; page: number }
  | { kind: 'section-array'; root: number }
  | { kind: 'usage'; page: number }
  | { kind: 'struct-pages'; firstPfn: number };

/** Fills `count` struct pages for pfns [pfn, pfn+count) at dst[off…]. */
export type StructPageFiller = (pfn: number, count: number, dst: Uint8Array, off: number) => void;

export class KernelLayout {
  readonly era: EraDef;
  readonly model: MemoryModel;
  readonly physBase: number;
  /** pfn of init_top_pgt (= kbase). */
  readonly kbase: number;
  /** Pages the kernel-text mapping covers (whole 2 MiB pages). */
  readonly imagePages: number;
  /** One past the image's last page (_end). */
  readonly imageEnd: number;
  /**
   * Spans of the mapping that are not the image (freed init sections and
   * rodata gaps, then the tail past _end), as [pfn, count], ascending.
   */
  readonly freedSpans: Array<[number, number]>;
  readonly pgd: number;
  readonly pudKernel: number;
  readonly pmdKernel: number;
  readonly uts: number;
  readonly zeroPage: number;
  /** One past the highest pfn the kernel knows (RAM or device). */
  readonly maxPfn: number;
  readonly directPuds: number[] = [];
  readonly vmemmapPud: number | undefined;
  /** PMD page per 512-section slot (vmemmap PUD entry), or undefined. */
  readonly vmemmapPmds = new Map<number, number>();
  readonly sectionRoots: number | undefined;
  readonly sectionArrays = new Map<number, number>();
  readonly usageStart: number | undefined;
  readonly usagePages: number = 0;
  readonly usageSize: number;
  /** pfn of the first struct-page page (a 2 MiB boundary). */
  readonly structStart: number;
  readonly structPages: number;
  /** One past the last metadata pfn. */
  readonly metaEnd: number;
  /** First pfn after the dynamic (page-granular) metadata, before the struct-page alignment. */
  readonly dynamicEnd: number;
  readonly sections: SectionInfo[] = [];
  /** Pages other parts of the stub kernel render themselves (the printk buffers): pfn → 4 KiB. */
  readonly extraPages = new Map<number, Uint8Array>();
  private readonly nodename: string;

  constructor(o: LayoutOptions) {
    this.era = o.era;
    this.model = o.model;
    this.physBase = o.physBase;
    this.nodename = o.nodename;
    if (o.physBase % MiB2 !== 0) {
      throw new UsageError(`phys_base 0x${o.physBase.toString(16)} is not a multiple of 2 MiB (CONFIG_PHYSICAL_ALIGN)`);
    }
    let maxPfn = 0;
    for (const r of o.ram) maxPfn = Math.max(maxPfn, r.end);
    for (const d of o.devices) maxPfn = Math.max(maxPfn, d.end);
    this.maxPfn = maxPfn;
    if (maxPfn * PAGE_SIZE >= 2 ** MAX_PHYSMEM_BITS) throw new UsageError('the layout reaches beyond 2^46 bytes of physical address space');

    this.kbase = (PHYSICAL_START + o.physBase) / PAGE_SIZE;
    this.imagePages = o.imageSize / PAGE_SIZE;
    const plan = o.image ?? { endPages: this.imagePages, freed: [] };
    if (plan.endPages < IMAGE_FIXED_PAGES || plan.endPages > this.imagePages) throw new Error(`image end ${plan.endPages} outside [${IMAGE_FIXED_PAGES}, ${this.imagePages}]`);
    this.imageEnd = this.kbase + plan.endPages;
    this.freedSpans = [];
    let at = IMAGE_FIXED_PAGES;
    for (const [off, n] of plan.freed) {
      if (off < at || n <= 0 || off + n > plan.endPages) throw new Error(`freed image span [${off}, +${n}) overlaps or leaves the image`);
      this.freedSpans.push([this.kbase + off, n]);
      at = off + n;
    }
    if (plan.endPages < this.imagePages) this.freedSpans.push([this.imageEnd, this.imagePages - plan.endPages]);
    this.pgd = this.kbase;
    this.pudKernel = this.kbase + 1;
    this.pmdKernel = this.kbase + 2;
    this.uts = this.kbase + 3;
    this.zeroPage = this.kbase + 4;
    this.usageSize = o.era.version < 500 ? 32 : 40;

    // Sections and their flags.
    if (o.model === 'sparsemem') {
      const flagsOf = new Map<number, number>();
      const mark = (start: number, end: number, flags: number): void => {
        for (let s = Math.floor(start / PAGES_PER_SECTION); s * PAGES_PER_SECTION < end; s++) {
          if (!flagsOf.has(s)) flagsOf.set(s, flags);
        }
      };
      for (const r of o.ram) if (r.kind === 'boot') mark(r.start, r.end, o.era.sectionFlags.early);
      for (const r of o.ram) if (r.kind === 'hotplug') mark(r.start, r.end, o.era.sectionFlags.hotplug);
      for (const d of o.devices) mark(d.start, d.end, o.era.sectionFlags.device);
      const nrs = [...flagsOf.keys()].sort((a, b) => a - b);
      nrs.forEach((nr, chunk) => this.sections.push({ nr, flags: flagsOf.get(nr)!, chunk }));
    }

    // Dynamic metadata after the image.
    let p = this.kbase + this.imagePages;
    const physEnd = maxPfn * PAGE_SIZE;
    const nDirect = Math.max(1, Math.ceil(physEnd / (512 * GiB)));
    for (let i = 0; i < nDirect; i++) this.directPuds.push(p++);
    if (o.model === 'sparsemem') {
      this.vmemmapPud = p++;
      for (const s of this.sections) {
        const slot = Math.floor(s.nr / 512);
        if (!this.vmemmapPmds.has(slot)) this.vmemmapPmds.set(slot, p++);
      }
      this.sectionRoots = p;
      p += (NR_SECTION_ROOTS * 8) / PAGE_SIZE;
      for (const s of this.sections) {
        const root = Math.floor(s.nr / SECTIONS_PER_ROOT);
        if (!this.sectionArrays.has(root)) this.sectionArrays.set(root, p++);
      }
      this.usageStart = p;
      this.usagePages = Math.ceil((this.sections.length * this.usageSize) / PAGE_SIZE);
      p += this.usagePages;
    }
    this.dynamicEnd = p;
    this.structStart = Math.ceil(p / PAGES_2M) * PAGES_2M;
    this.structPages =
      o.model === 'sparsemem'
        ? this.sections.length * PAGES_2M
        : Math.ceil((maxPfn * STRUCT_PAGE_SIZE) / PAGE_SIZE);
    this.metaEnd = this.structStart + this.structPages;

    const home = o.ram.find((r) => r.kind === 'boot' && r.start <= this.kbase && this.kbase < r.end);
    if (!home || this.metaEnd > home.end) {
      const need = (this.metaEnd * PAGE_SIZE) / 2 ** 20;
      throw new UsageError(
        `the guest is too small for its layout: the kernel image and memory map need RAM up to ${need.toFixed(0)} MiB in one range` +
          (o.model === 'flatmem' ? ' (FLATMEM needs a struct page for every pfn up to the highest address)' : ''),
      );
    }
  }

  /** Physical address → direct-map virtual address. */
  static directMap(paddr: number): bigint {
    return PAGE_OFFSET + BigInt(paddr);
  }

  /** A kernel-image pfn → its __START_KERNEL_map virtual address. */
  textAddress(pfn: number): bigint {
    return KERNEL_TEXT_BASE + BigInt(pfn * PAGE_SIZE - this.physBase);
  }

  get initTopPgt(): bigint {
    return this.textAddress(this.pgd);
  }
  get initUtsNs(): bigint {
    return this.textAddress(this.uts);
  }
  get nodeOnlineMap(): bigint {
    return this.initUtsNs + 0x200n;
  }
  get memMapSymbol(): bigint {
    return this.initUtsNs + 0x300n;
  }
  get memSectionSymbol(): bigint | undefined {
    return this.sectionRoots === undefined ? undefined : KernelLayout.directMap(this.sectionRoots * PAGE_SIZE);
  }

  /**
   * The page-granular metadata as [pfn, count, isZero] spans, in order;
   * the struct-page area is one more span. isZero marks pages left all zero
   * (the unused pages of the mem_section root array).
   */
  metaSpans(): Array<{ start: number; count: number; zero: boolean; what: string }> {
    const out: Array<{ start: number; count: number; zero: boolean; what: string }> = [];
    out.push({ start: this.pgd, count: 3, zero: false, what: 'page-tables' });
    out.push({ start: this.uts, count: 1, zero: false, what: 'init_uts_ns' });
    let p = this.kbase + this.imagePages;
    out.push({ start: p, count: this.directPuds.length, zero: false, what: 'direct-map-pud' });
    p += this.directPuds.length;
    if (this.model === 'sparsemem') {
      out.push({ start: p, count: 1 + this.vmemmapPmds.size, zero: false, what: 'vmemmap-page-tables' });
      p += 1 + this.vmemmapPmds.size;
      const rootPages = (NR_SECTION_ROOTS * 8) / PAGE_SIZE;
      // Root pointers sit in the page holding root index / 512.
      const usedRootPages = new Set([...this.sectionArrays.keys()].map((r) => Math.floor(r / 512)));
      for (let i = 0; i < rootPages; i++) out.push({ start: p + i, count: 1, zero: !usedRootPages.has(i), what: 'mem_section-roots' });
      p += rootPages;
      out.push({ start: p, count: this.sectionArrays.size + this.usagePages, zero: false, what: 'mem_section' });
      p += this.sectionArrays.size + this.usagePages;
    }
    out.push({ start: this.structStart, count: this.structPages, zero: false, what: this.model === 'sparsemem' ? 'vmemmap' : 'mem_map' });
    return out;
  }

  /**
   * Render metadata pages [pfn, pfn+count) into dst at off (each 4 KiB,
   * overwritten entirely). Struct pages come from `fill`.
   */
  fillMeta(pfn: number, count: number, dst: Uint8Array, off: number, fill: StructPageFiller): void {
    let i = 0;
    while (i < count) {
      const p = pfn + i;
      if (p >= this.structStart && p < this.metaEnd) {
        // As many struct-page pages as are contiguous here.
        const n = Math.min(count - i, this.metaEnd - p);
        this.fillStructPages(p, n, dst, off + i * PAGE_SIZE, fill);
        i += n;
        continue;
      }
      const o = off + i * PAGE_SIZE;
      dst.fill(0, o, o + PAGE_SIZE);
      this.fillOne(p, dst, o);
      i++;
    }
  }

  private fillStructPages(p: number, n: number, dst: Uint8Array, off: number, fill: StructPageFiller): void {
    const perPage = PAGE_SIZE / STRUCT_PAGE_SIZE;
    if (this.model === 'flatmem') {
      const first = (p - this.structStart) * perPage;
      const total = n * perPage;
      const valid = Math.max(0, Math.min(total, this.maxPfn - first));
      if (valid > 0) fill(first, valid, dst, off);
      if (valid < total) dst.fill(0, off + valid * STRUCT_PAGE_SIZE, off + total * STRUCT_PAGE_SIZE);
      return;
    }
    // Sparse: chunk c holds the struct pages of section sections[c].
    let done = 0;
    while (done < n) {
      const q = p + done;
      const chunk = Math.floor((q - this.structStart) / PAGES_2M);
      const within = q - this.structStart - chunk * PAGES_2M;
      const sec = this.sections[chunk]!;
      const m = Math.min(n - done, PAGES_2M - within);
      fill(sec.nr * PAGES_PER_SECTION + within * perPage, m * perPage, dst, off + done * PAGE_SIZE);
      done += m;
    }
  }

  private fillOne(p: number, b: Uint8Array, o: number): void {
    const dv = new DataView(b.buffer, b.byteOffset + o, PAGE_SIZE);
    if (p === this.pgd) {
      this.directPuds.forEach((pud, k) => setEntry(dv, (273 + k) * 8, pud * PAGE_SIZE + PTE_KERNPG_TABLE, false));
      if (this.vmemmapPud !== undefined) setEntry(dv, 468 * 8, this.vmemmapPud * PAGE_SIZE + PTE_KERNPG_TABLE, false);
      setEntry(dv, 511 * 8, this.pudKernel * PAGE_SIZE + PTE_KERNPG_TABLE, false);
      return;
    }
    if (p === this.pudKernel) {
      setEntry(dv, 510 * 8, this.pmdKernel * PAGE_SIZE + PTE_KERNPG_TABLE, false);
      return;
    }
    if (p === this.pmdKernel) {
      // level2_kernel_pgt maps the image with 2 MiB pages from PHYSICAL_START.
      const first = PHYSICAL_START / MiB2;
      const n = this.imagePages / PAGES_2M;
      for (let i = first; i < first + n; i++) setEntry(dv, i * 8, this.physBase + i * MiB2 + PTE_LARGE, false);
      return;
    }
    if (p === this.uts) {
      this.fillUts(b, o);
      return;
    }
    const di = this.directPuds.indexOf(p);
    if (di >= 0) {
      const end = this.maxPfn * PAGE_SIZE;
      for (let i = 0; i < 512; i++) {
        const addr = (di * 512 + i) * GiB;
        if (addr >= end) break;
        setEntry(dv, i * 8, addr + PTE_LARGE, true);
      }
      return;
    }
    if (p === this.vmemmapPud) {
      for (const [slot, pmd] of this.vmemmapPmds) setEntry(dv, slot * 8, pmd * PAGE_SIZE + PTE_KERNPG_TABLE, false);
      return;
    }
    for (const [slot, pmd] of this.vmemmapPmds) {
      if (pmd !== p) continue;
      for (const s of this.sections) {
        if (Math.floor(s.nr / 512) !== slot) continue;
        const chunkPhys = (this.structStart + s.chunk * PAGES_2M) * PAGE_SIZE;
        setEntry(dv, (s.nr % 512) * 8, chunkPhys + PTE_LARGE, true);
      }
      return;
    }
    if (this.sectionRoots !== undefined && p >= this.sectionRoots && p < this.sectionRoots + (NR_SECTION_ROOTS * 8) / PAGE_SIZE) {
      const page = p - this.sectionRoots;
      for (const [root, arr] of this.sectionArrays) {
        if (Math.floor(root / 512) !== page) continue;
        setVaddr(dv, (root % 512) * 8, KernelLayout.directMap(arr * PAGE_SIZE));
      }
      return;
    }
    for (const [root, arr] of this.sectionArrays) {
      if (arr !== p) continue;
      for (const s of this.sections) {
        if (Math.floor(s.nr / SECTIONS_PER_ROOT) !== root) continue;
        const at = (s.nr % SECTIONS_PER_ROOT) * MEM_SECTION_SIZE;
        // section_mem_map = mem_map - section_nr_to_pfn(nr) = vmemmap with SPARSEMEM_VMEMMAP, plus flags.
        setVaddr(dv, at, VMEMMAP_START | BigInt(s.flags));
        const usage = (this.usageStart! * PAGE_SIZE + s.chunk * this.usageSize);
        setVaddr(dv, at + 8, KernelLayout.directMap(usage));
      }
      return;
    }
    if (this.usageStart !== undefined && p >= this.usageStart && p < this.usageStart + this.usagePages) {
      // mem_section_usage: subsection_map (all 64 subsections present, 5.3+) and the pageblock
      // migratetype bits (MIGRATE_MOVABLE in each 4-bit field).
      const base = (p - this.usageStart) * PAGE_SIZE;
      for (const s of this.sections) {
        const at = s.chunk * this.usageSize - base;
        if (at + this.usageSize <= 0 || at >= PAGE_SIZE) continue;
        for (let k = 0; k < this.usageSize; k++) {
          const off = at + k;
          if (off < 0 || off >= PAGE_SIZE) continue;
          const sub = this.usageSize === 40 && k < 8;
          b[o + off] = sub ? 0xff : 0x11;
        }
      }
      return;
    }
    const extra = this.extraPages.get(p);
    if (extra) {
      b.set(extra, o);
      return;
    }
    throw new Error(`pfn 0x${p.toString(16)} is not a metadata page`);
  }

  private fillUts(b: Uint8Array, o: number): void {
    const dv = new DataView(b.buffer, b.byteOffset + o, PAGE_SIZE);
    const base = o + this.era.utsNameOffset;
    if (this.era.utsNameOffset === 4) dv.setUint32(0, 3, true); // struct kref
    const fields = ['Linux', this.nodename, this.era.osrelease, '#1 SMP PREEMPT_DYNAMIC synthetic', 'x86_64', '(none)'];
    fields.forEach((f, i) => {
      const bytes = Buffer.from(f.slice(0, 64), 'latin1');
      b.set(bytes, base + i * 65);
    });
    // node_online_map: node 0.
    b[o + 0x200] = 1;
    if (this.model === 'flatmem') setVaddr(dv, 0x300, KernelLayout.directMap(this.structStart * PAGE_SIZE));
  }
}

function setEntry(dv: DataView, at: number, value: number, nx: boolean): void {
  const lo = value % TWO32;
  const hi = (value - lo) / TWO32;
  dv.setUint32(at, lo, true);
  dv.setUint32(at + 4, (hi | (nx ? PTE_NX_HI : 0)) >>> 0, true);
}

function setVaddr(dv: DataView, at: number, v: bigint): void {
  dv.setBigUint64(at, BigInt.asUintN(64, v), true);
}
