/**
 * x86_64 kernel virtual → physical translation, as makedumpfile's
 * __vtop4_x86_64 does it: a page-table walk from init_top_pgt (physical =
 * symbol − __START_KERNEL_map + phys_base), honouring 1 GiB (PUD PSE),
 * 2 MiB (PMD PSE) and 4 KiB entries and masking bits 52–63 (NX and
 * software bits).
 *
 * 4 or 5 levels: with NUMBER(pgtable_l5_enabled)=1 (LA57; exported since
 * Linux 4.17, commit c100a583601d "x86/kexec: Add 5-level paging support")
 * init_top_pgt is the PML5 table, indexed by bits 48–56, whose entries
 * point to P4D tables indexed by bits 39–47 (PGDIR_SHIFT 48, P4D_SHIFT 39;
 * arch/x86/include/asm/pgtable_64_types.h). Below the P4D the walk is the
 * 4-level one. Kernel addresses then start at 0xff00000000000000 instead
 * of 0xffff800000000000 (Documentation/arch/x86/x86_64/mm.rst); the direct
 * map and vmemmap bases are wherever the dump's own pointers say (KASLR
 * randomises them in either mode), so nothing here assumes them.
 *
 * Translation is by mapping piece: one walk answers for the whole page,
 * 2 MiB or 1 GiB mapping it lands in, so reading a struct page array costs
 * a walk per mapping, not per page. BigInt appears only per walk.
 */
import { DumpError, hex, isDumpContentError } from '../core/errors.js';
import type { DumpReader } from '../formats/types.js';
import type { VmcoreInfo } from '../formats/vmcoreinfo.js';

export const START_KERNEL_MAP = 0xffffffff80000000n;
/** Lowest kernel-half address with 4-level paging (47-bit virtual addresses, sign-extended). */
export const KERNEL_SPACE_L4 = 0xffff800000000000n;
/** Lowest kernel-half address with 5-level paging (56-bit virtual addresses, sign-extended). */
export const KERNEL_SPACE_L5 = 0xff00000000000000n;
const PAGE_PRESENT = 1;
const PAGE_PSE = 0x80;
const TWO32 = 0x1_0000_0000;
const GIB = 1 << 30;
const MIB2 = 1 << 21;

export interface PhysPiece {
  paddr: number;
  length: number;
}

export class X86_64Translator {
  private readonly reader: DumpReader;
  /** Physical address of the top-level page table. */
  readonly pgdPhys: number;
  readonly physBase: number;
  /** Paging levels: 4, or 5 with LA57. */
  readonly levels: 4 | 5;
  private readonly cache = new Map<number, DataView>();
  private readonly file: string;

  constructor(reader: DumpReader, pgdPhys: number, physBase: number, levels: 4 | 5 = 4) {
    this.reader = reader;
    this.pgdPhys = pgdPhys;
    this.physBase = physBase;
    this.levels = levels;
    this.file = reader.info.file;
  }

  /**
   * From VMCOREINFO: SYMBOL(init_top_pgt) (or init_level4_pgt / swapper_pg_dir
   * for older kernels), NUMBER(phys_base) (0 when absent, as makedumpfile
   * assumes; negative when the kernel runs below its link address, as
   * with KASLR) and NUMBER(pgtable_l5_enabled) (absent: 4 levels).
   */
  static fromVmcoreinfo(vi: VmcoreInfo, reader: DumpReader): X86_64Translator {
    const l5 = vi.number('pgtable_l5_enabled');
    if (l5 !== undefined && l5 !== 0 && l5 !== 1) {
      throw new DumpError('DUMP_CORRUPT', `NUMBER(pgtable_l5_enabled) is ${l5}, not 0 or 1`, { file: reader.info.file });
    }
    const top = vi.symbol('init_top_pgt') ?? vi.symbol('init_level4_pgt') ?? vi.symbol('swapper_pg_dir');
    if (top === undefined) throw vi.missing('SYMBOL(init_top_pgt)', 'translating kernel virtual addresses');
    const physBase = vi.number('phys_base') ?? 0;
    if (top < START_KERNEL_MAP) {
      throw new DumpError('DUMP_CORRUPT', `SYMBOL(init_top_pgt) ${hex(top)} is not in the kernel text mapping`, { file: reader.info.file });
    }
    const pgd = Number(top - START_KERNEL_MAP) + physBase;
    if (pgd < 0) {
      throw new DumpError('DUMP_CORRUPT', `SYMBOL(init_top_pgt) ${hex(top)} with NUMBER(phys_base)=${physBase} is below physical address 0`, { file: reader.info.file });
    }
    return new X86_64Translator(reader, pgd, physBase, l5 === 1 ? 5 : 4);
  }

  /** Lowest kernel virtual address in this paging mode. */
  get kernelSpaceStart(): bigint {
    return this.levels === 5 ? KERNEL_SPACE_L5 : KERNEL_SPACE_L4;
  }

  /** Physical address of a kernel-text symbol, without a walk (makedumpfile's kvtop fast path is not used; this is for ranges). */
  kernelTextToPhys(vaddr: bigint): number {
    return Number(vaddr - START_KERNEL_MAP) + this.physBase;
  }

  private async table(paddr: number): Promise<DataView> {
    const hit = this.cache.get(paddr);
    if (hit) return hit;
    const buf = new Uint8Array(4096);
    try {
      await this.reader.readPhys(paddr, 4096, buf);
    } catch (err) {
      // A table the dump does not hold (or holds damaged) maps nothing; a
      // failure of the run itself (a read error, a codec this node cannot
      // run) is not the dump's content and goes up as it is.
      if (isDumpContentError(err)) {
        throw new DumpError('ADDRESS_UNMAPPED', `page table at physical ${hex(paddr)} is not in the image`, { file: this.file, cause: err });
      }
      throw err;
    }
    const dv = new DataView(buf.buffer);
    if (this.cache.size >= 256) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(paddr, dv);
    return dv;
  }

  private static entry(dv: DataView, index: number): { present: boolean; pse: boolean; addr: number } {
    const lo = dv.getUint32(index * 8, true);
    const hi = dv.getUint32(index * 8 + 4, true);
    // ENTRY_MASK: physical address bits 12..51.
    const addr = (hi & 0xfffff) * TWO32 + ((lo & 0xfffff000) >>> 0);
    return { present: (lo & PAGE_PRESENT) !== 0, pse: (lo & PAGE_PSE) !== 0, addr };
  }

  /**
   * Translate `vaddr`: the physical address and how many bytes from it stay
   * physically contiguous within the same mapping (to the end of its 4 KiB,
   * 2 MiB or 1 GiB page).
   */
  async translate(vaddr: bigint): Promise<PhysPiece> {
    const t = await this.walk(vaddr);
    if (typeof t === 'string') {
      throw new DumpError('ADDRESS_UNMAPPED', `kernel address ${hex(BigInt.asUintN(64, vaddr))} is not mapped (${t} entry not present)`, { file: this.file });
    }
    return t;
  }

  /**
   * translate() without the error: an unmapped address gives the level
   * whose entry is not present. For walks that expect holes (the kernel
   * image's mapping: some 500 of them in every run).
   */
  private async walk(vaddr: bigint): Promise<PhysPiece | 'PGD' | 'P4D' | 'PUD' | 'PMD' | 'PTE'> {
    const v = BigInt.asUintN(64, vaddr);
    const idx = (shift: bigint): number => Number((v >> shift) & 511n);
    const low = (bits: number): number => Number(v & ((1n << BigInt(bits)) - 1n));

    let pudTable: number;
    if (this.levels === 5) {
      const pgd = X86_64Translator.entry(await this.table(this.pgdPhys), idx(48n));
      if (!pgd.present) return 'PGD';
      const p4d = X86_64Translator.entry(await this.table(pgd.addr), idx(39n));
      if (!p4d.present) return 'P4D';
      pudTable = p4d.addr;
    } else {
      const pgd = X86_64Translator.entry(await this.table(this.pgdPhys), idx(39n));
      if (!pgd.present) return 'PGD';
      pudTable = pgd.addr;
    }
    const pud = X86_64Translator.entry(await this.table(pudTable), idx(30n));
    if (!pud.present) return 'PUD';
    if (pud.pse) {
      const off = low(30);
      return { paddr: pud.addr - (pud.addr % GIB) + off, length: GIB - off };
    }
    const pmd = X86_64Translator.entry(await this.table(pud.addr), idx(21n));
    if (!pmd.present) return 'PMD';
    if (pmd.pse) {
      const off = low(21);
      return { paddr: pmd.addr - (pmd.addr % MIB2) + off, length: MIB2 - off };
    }
    const pte = X86_64Translator.entry(await this.table(pmd.addr), idx(12n));
    if (!pte.present) return 'PTE';
    const off = low(12);
    return { paddr: pte.addr + off, length: 4096 - off };
  }

  /** Physical pieces of [vaddr, vaddr+length), merged where contiguous. */
  async translateRange(vaddr: bigint, length: number): Promise<PhysPiece[]> {
    const out: PhysPiece[] = [];
    let done = 0;
    while (done < length) {
      const t = await this.translate(vaddr + BigInt(done));
      const n = Math.min(t.length, length - done);
      const last = out[out.length - 1];
      if (last && last.paddr + last.length === t.paddr) last.length += n;
      else out.push({ paddr: t.paddr, length: n });
      done += n;
    }
    return out;
  }

  /** Read [vaddr, vaddr+length) of kernel virtual memory. */
  async read(vaddr: bigint, length: number, into: Uint8Array, offset = 0): Promise<void> {
    let at = offset;
    for (const p of await this.translateRange(vaddr, length)) {
      await this.reader.readPhys(p.paddr, p.length, into, at);
      at += p.length;
    }
  }

  /** A u64 at a kernel virtual address. */
  async readU64(vaddr: bigint): Promise<bigint> {
    const b = new Uint8Array(8);
    await this.read(vaddr, 8, b);
    return new DataView(b.buffer).getBigUint64(0, true);
  }

  /**
   * Physical ranges mapped by the kernel-text mapping (the kernel image:
   * text, data, bss), found by walking the PGD entry of __START_KERNEL_map.
   * Returns pfn ranges. Used to protect the kernel image from exclusion.
   */
  async kernelImagePfns(maxBytes = GIB): Promise<Array<{ start: number; end: number }>> {
    const out: Array<{ start: number; end: number }> = [];
    for (let off = 0; off < maxBytes; ) {
      let t: PhysPiece | string;
      try {
        t = await this.walk(START_KERNEL_MAP + BigInt(off));
      } catch (err) {
        // A page table that is not in the image: nothing mapped through it.
        if (!(err instanceof DumpError && err.code === 'ADDRESS_UNMAPPED')) throw err;
        t = 'table';
      }
      if (typeof t === 'string') {
        off += MIB2 - (off % MIB2);
        continue;
      }
      const start = Math.floor(t.paddr / 4096);
      const end = Math.ceil((t.paddr + t.length) / 4096);
      const last = out[out.length - 1];
      if (last && last.end === start) last.end = end;
      else out.push({ start, end });
      off += t.length;
    }
    return out;
  }
}
