/**
 * Where the struct page of each pfn lives: FLATMEM (one array at the
 * address held in SYMBOL(mem_map)) or SPARSEMEM / SPARSEMEM_EXTREME (the
 * mem_section table; with VMEMMAP the encoded per-section pointers all point
 * into the virtual memmap). Decoding follows the kernel's
 * sparse_decode_mem_map: the stored value is the section's mem_map minus
 * (first pfn × sizeof(struct page)), or-ed with flag bits.
 */
import { DumpError, hex, isDumpContentError } from '../core/errors.js';
import type { VmcoreInfo } from '../formats/vmcoreinfo.js';
import type { X86_64Translator } from './x86_64.js';

export type MemoryModel = 'flatmem' | 'sparsemem' | 'sparsemem-extreme';

/** section_mem_map flag bits (include/linux/mmzone.h). */
export const SECTION_MARKED_PRESENT = 1 << 0;
export const SECTION_HAS_MEM_MAP = 1 << 1;
export const SECTION_IS_ONLINE = 1 << 2;
export const SECTION_IS_EARLY = 1 << 3;
/** Since Linux 5.12 ("mm: teach pfn_to_online_page() about ZONE_DEVICE section collisions"), only with CONFIG_ZONE_DEVICE. */
export const SECTION_TAINT_ZONE_DEVICE = 1 << 4;

/** Largest number of sections accepted (2^26: 8 PiB of 128 MiB sections). */
const MAX_SECTIONS = 1 << 26;

export interface MemMapPiece {
  start: number;
  end: number;
  /** Kernel virtual address of the struct page of `start`. */
  vaddr: bigint;
}

export class MemMap {
  readonly model: MemoryModel;
  readonly pageStructSize: number;
  readonly pagesPerSection: number;
  /** Per section: struct page vaddr of its first pfn (0 = no memmap). */
  private readonly sectionMap: BigUint64Array;
  /** Per section: the low flag bits of section_mem_map. */
  readonly sectionFlags: Uint8Array;
  private readonly flatBase: bigint;
  private readonly maxPfn: number;

  private constructor(
    model: MemoryModel,
    pageStructSize: number,
    pagesPerSection: number,
    sectionMap: BigUint64Array,
    sectionFlags: Uint8Array,
    flatBase: bigint,
    maxPfn: number,
  ) {
    this.model = model;
    this.pageStructSize = pageStructSize;
    this.pagesPerSection = pagesPerSection;
    this.sectionMap = sectionMap;
    this.sectionFlags = sectionFlags;
    this.flatBase = flatBase;
    this.maxPfn = maxPfn;
  }

  static async locate(vi: VmcoreInfo, tr: X86_64Translator, maxPfn: number, file: string): Promise<MemMap> {
    const why = 'locating struct page (the memory model)';
    const pageSize = vi.requirePageSize();
    const structSize = vi.requireSize('page', why);
    if (structSize < 16 || structSize > 512) {
      throw new DumpError('DUMP_CORRUPT', `VMCOREINFO SIZE(page) is ${structSize}, not a plausible struct page size`, { file });
    }
    const flat = vi.symbol('mem_map');
    const memSection = vi.symbol('mem_section');
    if (memSection !== undefined) {
      return MemMap.sparse(vi, tr, maxPfn, file, pageSize, structSize, memSection);
    }
    if (flat !== undefined) {
      const base = await tr.readU64(flat);
      if (base < tr.kernelSpaceStart) throw new DumpError('DUMP_CORRUPT', `mem_map pointer at ${hex(flat)} holds ${hex(base)}, not a kernel address`, { file });
      return new MemMap('flatmem', structSize, 0, new BigUint64Array(0), new Uint8Array(0), base, maxPfn);
    }
    throw vi.missing('SYMBOL(mem_section) or SYMBOL(mem_map)', why);
  }

  private static async sparse(
    vi: VmcoreInfo,
    tr: X86_64Translator,
    maxPfn: number,
    file: string,
    pageSize: number,
    structSize: number,
    symbol: bigint,
  ): Promise<MemMap> {
    const why = 'reading mem_section';
    const msSize = vi.requireSize('mem_section', why);
    const mapOff = vi.requireOffset('mem_section.section_mem_map', why);
    if (msSize < 8 || msSize > 256 || mapOff + 8 > msSize) {
      throw new DumpError('DUMP_CORRUPT', `VMCOREINFO SIZE(mem_section)=${msSize} / OFFSET(mem_section.section_mem_map)=${mapOff} are not plausible`, { file });
    }
    const sectionBits = vi.number('SECTION_SIZE_BITS') ?? 27;
    const physBits = vi.number('MAX_PHYSMEM_BITS') ?? 46;
    const pageShift = Math.log2(pageSize);
    if (sectionBits <= pageShift || sectionBits > 40 || physBits < sectionBits || physBits > 52) {
      throw new DumpError('DUMP_CORRUPT', `SECTION_SIZE_BITS ${sectionBits} / MAX_PHYSMEM_BITS ${physBits} are not plausible`, { file });
    }
    const kvBase = tr.kernelSpaceStart;
    const pps = 2 ** (sectionBits - pageShift);
    const nrSections = 2 ** (physBits - sectionBits);
    const perRootExtreme = Math.floor(pageSize / msSize);
    const rootsExtreme = Math.ceil(nrSections / perRootExtreme);
    const length = vi.length('mem_section');
    const extreme = length === undefined || length === rootsExtreme;
    const numSections = Math.min(Math.ceil(maxPfn / pps), nrSections);
    if (numSections > MAX_SECTIONS) {
      throw new DumpError('DUMP_LIMIT_EXCEEDED', `${numSections} memory sections exceed the limit of ${MAX_SECTIONS}`, { file });
    }
    // The low bits of section_mem_map are flags; the encoded pointer is
    // aligned to sizeof(struct page) multiples of 64 on x86_64, so 6 bits
    // are flags there (makedumpfile masks 5; Linux 6.19 may use a 6th).
    const flagBits = structSize % 64 === 0 ? 6 : 5;
    const flagMask = (1 << flagBits) - 1;

    const tryRoot = async (rootAddr: bigint): Promise<{ map: BigUint64Array; flags: Uint8Array } | undefined> => {
      const map = new BigUint64Array(numSections);
      const flags = new Uint8Array(numSections);
      let present = 0;
      if (extreme) {
        const perRoot = perRootExtreme;
        const roots = Math.ceil(numSections / perRoot);
        const rootBuf = new Uint8Array(roots * 8);
        await tr.read(rootAddr, rootBuf.length, rootBuf);
        const rdv = new DataView(rootBuf.buffer);
        const secBuf = new Uint8Array(perRoot * msSize);
        const sdv = new DataView(secBuf.buffer);
        for (let r = 0; r < roots; r++) {
          const root = rdv.getBigUint64(r * 8, true);
          if (root === 0n) continue;
          if (root < kvBase) return undefined;
          const first = r * perRoot;
          const n = Math.min(perRoot, numSections - first);
          try {
            await tr.read(root, n * msSize, secBuf);
          } catch (err) {
            if (isDumpContentError(err)) return undefined;
            throw err;
          }
          for (let k = 0; k < n; k++) {
            const v = decode(sdv.getBigUint64(k * msSize + mapOff, true), first + k);
            if (v === null) return undefined;
            present += v;
          }
        }
      } else {
        const buf = new Uint8Array(numSections * msSize);
        await tr.read(rootAddr, buf.length, buf);
        const dv = new DataView(buf.buffer);
        for (let s = 0; s < numSections; s++) {
          const v = decode(dv.getBigUint64(s * msSize + mapOff, true), s);
          if (v === null) return undefined;
          present += v;
        }
      }
      return present > 0 ? { map, flags } : undefined;

      function decode(raw: bigint, s: number): number | null {
        const f = Number(raw & BigInt(flagMask));
        flags[s] = f;
        if (!(f & SECTION_MARKED_PRESENT)) return 0;
        const coded = raw & ~BigInt(flagMask);
        const memMap = BigInt.asUintN(64, coded + BigInt(s * pps * structSize));
        if (memMap < kvBase) return null;
        map[s] = memMap;
        return 1;
      }
    };

    // A root the dump does not hold is no root; a failure of the run itself goes up.
    const orNone = <T,>(fallback: T) => (err: unknown): T => {
      if (isDumpContentError(err)) return fallback;
      throw err;
    };
    let found = await tryRoot(symbol).catch(orNone(undefined));
    if (!found && extreme) {
      // SYMBOL(mem_section) taken from a vmlinux names the pointer, not the array.
      const ptr = await tr.readU64(symbol).catch(orNone(0n));
      if (ptr >= kvBase) found = await tryRoot(ptr).catch(orNone(undefined));
    }
    if (!found) {
      throw new DumpError('DUMP_CORRUPT', `mem_section at ${hex(symbol)} holds no valid present section`, { file });
    }
    return new MemMap(extreme ? 'sparsemem-extreme' : 'sparsemem', structSize, pps, found.map, found.flags, 0n, maxPfn);
  }

  get sectionCount(): number {
    return this.sectionMap.length;
  }

  /** Struct page locations for pfns [start, end); pfns without a memmap are left out. */
  pieces(start: number, end: number): MemMapPiece[] {
    const e = Math.min(end, this.maxPfn);
    if (start >= e) return [];
    const sz = BigInt(this.pageStructSize);
    if (this.model === 'flatmem') return [{ start, end: e, vaddr: this.flatBase + BigInt(start) * sz }];
    const out: MemMapPiece[] = [];
    const pps = this.pagesPerSection;
    for (let s = Math.floor(start / pps); s * pps < e && s < this.sectionMap.length; s++) {
      const base = this.sectionMap[s]!;
      if (base === 0n) continue;
      const a = Math.max(start, s * pps);
      const b = Math.min(e, (s + 1) * pps);
      const vaddr = base + BigInt(a - s * pps) * sz;
      const last = out[out.length - 1];
      if (last && last.end === a && last.vaddr + BigInt(last.end - last.start) * sz === vaddr) last.end = b;
      else out.push({ start: a, end: b, vaddr });
    }
    return out;
  }

  /**
   * The pfn past the last section that has a memmap (FLATMEM: max_pfn).
   * Memory above it is dumped but has no struct page anywhere: the kernel
   * does not manage it (a mem= boot, or the hypervisor's device memory —
   * QEMU's dump-guest-memory writes the VGA framebuffer and the BIOS ROM
   * above RAM as PT_LOADs). makedumpfile trims max_mapnr to this pfn
   * (makedumpfile.c get_mem_map(): "Adjust max_mapnr for the case that
   * Linux uses less memory than is dumped"), so those pages are not dumped.
   */
  memmapEnd(): number {
    if (this.model === 'flatmem') return this.maxPfn;
    for (let s = this.sectionMap.length - 1; s >= 0; s--) if (this.sectionMap[s] !== 0n) return Math.min(this.maxPfn, (s + 1) * this.pagesPerSection);
    return 0;
  }

  /** Flags of the section holding pfn (0 for FLATMEM or beyond the table). */
  flagsOf(pfn: number): number {
    if (this.model === 'flatmem') return SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP | SECTION_IS_ONLINE;
    return this.sectionFlags[Math.floor(pfn / this.pagesPerSection)] ?? 0;
  }

  /**
   * The virtual memmap base, when every present section's struct pages sit
   * at vmemmap + pfn × sizeof(struct page) for one vmemmap (SPARSEMEM_VMEMMAP,
   * whatever base KASLR chose); undefined otherwise.
   */
  vmemmapBase(): bigint | undefined {
    if (this.model === 'flatmem') return undefined;
    const stride = BigInt(this.pagesPerSection * this.pageStructSize);
    let base: bigint | undefined;
    for (let s = 0; s < this.sectionMap.length; s++) {
      const v = this.sectionMap[s]!;
      if (v === 0n) continue;
      const b = v - BigInt(s) * stride;
      if (base === undefined) base = b;
      else if (b !== base) return undefined;
    }
    return base;
  }

  describe(): string {
    if (this.model === 'flatmem') return `FLATMEM, mem_map at 0x${this.flatBase.toString(16)}`;
    let present = 0;
    for (const v of this.sectionMap) if (v !== 0n) present++;
    const label = this.model === 'sparsemem-extreme' ? 'SPARSEMEM_EXTREME' : 'SPARSEMEM';
    const base = this.vmemmapBase();
    const vm = base !== undefined ? ` + VMEMMAP at 0x${base.toString(16)}` : '';
    return `${label}${vm}, ${present} of ${this.sectionMap.length} sections present, ${this.pagesPerSection} pages per section`;
  }
}
