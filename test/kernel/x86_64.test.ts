import { describe, expect, it } from 'vitest';
import { DumpError } from '../../src/core/errors.js';
import { PfnState, type DumpInfo, type DumpReader } from '../../src/formats/types.js';
import { VmcoreInfo } from '../../src/formats/vmcoreinfo.js';
import { X86_64Translator } from '../../src/kernel/x86_64.js';

/** A physical memory made of explicitly placed pages; everything else is absent. */
class PageMemory implements DumpReader {
  readonly pages = new Map<number, Uint8Array>();
  readonly info = { file: 'mem', pageSize: 4096 } as DumpInfo;
  page(pfn: number): DataView {
    let p = this.pages.get(pfn);
    if (!p) this.pages.set(pfn, (p = new Uint8Array(4096)));
    return new DataView(p.buffer);
  }
  async pfnStates(start: number, count: number, out: Uint8Array): Promise<void> {
    for (let i = 0; i < count; i++) out[i] = this.pages.has(start + i) ? PfnState.PRESENT : PfnState.HOLE;
  }
  async readPages(pfn: number, count: number, into: Uint8Array, offset = 0): Promise<void> {
    for (let i = 0; i < count; i++) await this.readPhys((pfn + i) * 4096, 4096, into, offset + i * 4096);
  }
  async readPhys(paddr: number, length: number, into: Uint8Array, offset = 0): Promise<void> {
    for (let done = 0; done < length; ) {
      const a = paddr + done;
      const p = this.pages.get(Math.floor(a / 4096));
      if (!p) throw new DumpError('ADDRESS_UNMAPPED', `physical 0x${a.toString(16)} absent`);
      const n = Math.min(length - done, 4096 - (a % 4096));
      into.set(p.subarray(a % 4096, (a % 4096) + n), offset + done);
      done += n;
    }
  }
  async close(): Promise<void> {}
}

const PRESENT = 1n;
const PSE = 0x80n;
const NX = 1n << 63n;
const set = (dv: DataView, index: number, v: bigint): void => dv.setBigUint64(index * 8, v, true);

/**
 * Page tables at pfns 0x10.. : PGD 0x10; kernel text (PGD 511 → PUD 0x11 → PMD 0x12
 * 2 MiB pages, and a PTE table 0x13 with 4 KiB pages); a 1 GiB direct map (PGD 273 → PUD 0x14).
 */
function buildTables(physBase: number): PageMemory {
  const m = new PageMemory();
  const base = physBase / 4096;
  const at = (pfn: number): bigint => BigInt((pfn + base) * 4096);
  set(m.page(0x10 + base), 511, at(0x11) | PRESENT);
  set(m.page(0x10 + base), 273, at(0x14) | PRESENT);
  set(m.page(0x11 + base), 510, at(0x12) | PRESENT); // 0xffffffff80000000
  set(m.page(0x12 + base), 8, 0x1000000n | PRESENT | PSE | NX); // 0xffffffff81000000 -> 16 MiB (2 MiB page)
  set(m.page(0x12 + base), 9, at(0x13) | PRESENT); // 0xffffffff81200000 -> PTE table
  set(m.page(0x13 + base), 0, 0x5000n | PRESENT | NX); // 4 KiB page -> 0x5000
  set(m.page(0x13 + base), 1, 0x9000n | PRESENT);
  set(m.page(0x14 + base), 0, 0n | PRESENT | PSE | NX); // 0xffff888000000000 -> 0 (1 GiB page)
  return m;
}

function translator(m: PageMemory, physBase: number): X86_64Translator {
  const vi = VmcoreInfo.fromEntries([
    ['SYMBOL(init_top_pgt)', (0xffffffff80000000n + 0x10000n).toString(16)],
    ['NUMBER(phys_base)', physBase],
  ]);
  return X86_64Translator.fromVmcoreinfo(vi, m);
}

describe('x86_64 4-level page-table walk', () => {
  for (const physBase of [0, 0x200000]) {
    it(`handles 1 GiB, 2 MiB and 4 KiB entries and masks NX (phys_base 0x${physBase.toString(16)})`, async () => {
      const m = buildTables(physBase);
      const tr = translator(m, physBase);
      expect(tr.pgdPhys).toBe(0x10000 + physBase);
      expect(await tr.translate(0xffffffff81000123n)).toEqual({ paddr: 0x1000123, length: 0x200000 - 0x123 });
      expect(await tr.translate(0xffffffff81200010n)).toEqual({ paddr: 0x5010, length: 4096 - 0x10 });
      expect(await tr.translate(0xffffffff81201000n)).toEqual({ paddr: 0x9000, length: 4096 });
      expect(await tr.translate(0xffff888012345678n)).toEqual({ paddr: 0x12345678, length: 0x40000000 - 0x12345678 });
      const pieces = await tr.translateRange(0xffffffff81200ff0n, 0x20);
      expect(pieces).toEqual([
        { paddr: 0x5ff0, length: 0x10 },
        { paddr: 0x9000, length: 0x10 },
      ]);
    });
  }

  it('says which level is not present', async () => {
    const tr = translator(buildTables(0), 0);
    await expect(tr.translate(0xffffffff81202000n)).rejects.toThrow(/not mapped \(PTE entry not present\)/);
    await expect(tr.translate(0xffffffff81400000n)).rejects.toThrow(/PMD entry not present/);
    await expect(tr.translate(0xffffc90000000000n)).rejects.toThrow(/PGD entry not present/);
  });

  it('needs the top-level table symbol and a 0/1 pgtable_l5_enabled', () => {
    const m = buildTables(0);
    expect(() => X86_64Translator.fromVmcoreinfo(VmcoreInfo.fromEntries([['PAGESIZE', 4096]]), m)).toThrow(/SYMBOL\(init_top_pgt\)/);
    expect(() => X86_64Translator.fromVmcoreinfo(VmcoreInfo.fromEntries([['NUMBER(pgtable_l5_enabled)', 2], ['SYMBOL(init_top_pgt)', 'ffffffff80010000']]), m)).toThrow(
      /pgtable_l5_enabled\) is 2/,
    );
    expect(X86_64Translator.fromVmcoreinfo(VmcoreInfo.fromEntries([['NUMBER(pgtable_l5_enabled)', 0], ['SYMBOL(init_top_pgt)', 'ffffffff80010000']]), m).levels).toBe(4);
    expect(() => X86_64Translator.fromVmcoreinfo(VmcoreInfo.fromEntries([['NUMBER(phys_base)', -0x20000], ['SYMBOL(init_top_pgt)', 'ffffffff80010000']]), m)).toThrow(
      /below physical address 0/,
    );
  });

  it('finds the kernel image from the kernel-text mapping', async () => {
    const tr = translator(buildTables(0), 0);
    expect(await tr.kernelImagePfns(0x1400000)).toEqual([
      { start: 0x1000, end: 0x1200 },
      { start: 0x5, end: 0x6 },
      { start: 0x9, end: 0xa },
    ]);
  });
});

/**
 * 5-level tables (LA57), laid out like a KASLR'd Debian 6.x guest's: the
 * kernel linked at 0xffffffff81000000 runs 32 MiB lower (negative
 * phys_base), init_top_pgt is the PML5 table. Index bits: PML5 48–56,
 * P4D 39–47, PUD 30–38, PMD 21–29, PTE 12–20.
 *   kernel text   0xffffffff83000000: PML5[511] → P4D[511] → PUD[510] → PMD (2 MiB pages) / PTE table
 *   direct map    0xff11000000000000: PML5[273] → P4D[0] → PUD (1 GiB page)
 *   vmemmap       0xffd4000000000000: PML5[468] → P4D[0] → PUD[0] → PMD (2 MiB page)
 * Pages (pfn + the phys_base shift) 0x10 PML5, 0x11–0x14 kernel text,
 * 0x15–0x16 direct map, 0x17–0x19 vmemmap.
 */
const L5_PHYS_BASE = -0x2000000;
function buildTables5(): PageMemory {
  const m = new PageMemory();
  // Table pages live at physical pfn (n); the kernel symbol of the PML5 is
  // 0xffffffff82010000, i.e. physical 0x2010000 + phys_base = 0x10000.
  const at = (pfn: number): bigint => BigInt(pfn * 4096);
  set(m.page(0x10), 511, at(0x11) | PRESENT);
  set(m.page(0x11), 511, at(0x12) | PRESENT);
  set(m.page(0x12), 510, at(0x13) | PRESENT); // 0xffffffff80000000
  set(m.page(0x13), 24, 0x1000000n | PRESENT | PSE | NX); // 0xffffffff83000000 -> 16 MiB (2 MiB page)
  set(m.page(0x13), 25, at(0x14) | PRESENT); // 0xffffffff83200000 -> PTE table
  set(m.page(0x14), 0, 0x6000n | PRESENT);
  set(m.page(0x14), 1, 0x7000n | PRESENT | NX);
  set(m.page(0x10), 273, at(0x15) | PRESENT);
  set(m.page(0x15), 0, at(0x16) | PRESENT);
  set(m.page(0x16), 2, 0x40000000n | PRESENT | PSE | NX); // 0xff11000080000000 -> 1 GiB
  set(m.page(0x10), 468, at(0x17) | PRESENT);
  set(m.page(0x17), 0, at(0x18) | PRESENT);
  set(m.page(0x18), 0, at(0x19) | PRESENT);
  set(m.page(0x19), 1, 0x3e00000n | PRESENT | PSE | NX); // 0xffd4000000200000 -> 62 MiB
  return m;
}

function translator5(m: PageMemory, l5 = 1): X86_64Translator {
  const vi = VmcoreInfo.fromEntries([
    ['SYMBOL(init_top_pgt)', 'ffffffff82010000'],
    ['NUMBER(phys_base)', L5_PHYS_BASE],
    ['NUMBER(pgtable_l5_enabled)', l5],
  ]);
  return X86_64Translator.fromVmcoreinfo(vi, m);
}

describe('x86_64 5-level page-table walk (LA57)', () => {
  it('walks PML5 and P4D: kernel text (2 MiB, 4 KiB), direct map (1 GiB), vmemmap (2 MiB)', async () => {
    const tr = translator5(buildTables5());
    expect(tr.levels).toBe(5);
    expect(tr.pgdPhys).toBe(0x10000);
    expect(tr.kernelSpaceStart).toBe(0xff00000000000000n);
    expect(await tr.translate(0xffffffff83000456n)).toEqual({ paddr: 0x1000456, length: 0x200000 - 0x456 });
    expect(await tr.translate(0xffffffff83201008n)).toEqual({ paddr: 0x7008, length: 4096 - 8 });
    expect(await tr.translate(0xff11000080001000n)).toEqual({ paddr: 0x40001000, length: 0x40000000 - 0x1000 });
    expect(await tr.translate(0xffd4000000200040n)).toEqual({ paddr: 0x3e00040, length: 0x200000 - 0x40 });
    expect(tr.kernelTextToPhys(0xffffffff83000000n)).toBe(0x1000000);
  });

  it('names the missing level, P4D included', async () => {
    const tr = translator5(buildTables5());
    await expect(tr.translate(0xff22000000000000n)).rejects.toThrow(/PGD entry not present/);
    await expect(tr.translate(0xff11008000000000n)).rejects.toThrow(/P4D entry not present/);
    await expect(tr.translate(0xff110000c0000000n)).rejects.toThrow(/PUD entry not present/);
    await expect(tr.translate(0xffffffff83202000n)).rejects.toThrow(/PTE entry not present/);
  });

  it('the same tables walked at 4 levels find other entries (the level count matters)', async () => {
    const tr = translator5(buildTables5(), 0);
    expect(tr.levels).toBe(4);
    expect(tr.kernelSpaceStart).toBe(0xffff800000000000n);
    // At 4 levels PGD[511] leads to the P4D page, read as a PUD: its entry 510 is empty.
    await expect(tr.translate(0xffffffff83000000n)).rejects.toThrow(/PUD entry not present/);
  });

  it('finds the kernel image through PML5 and P4D', async () => {
    const tr = translator5(buildTables5());
    expect(await tr.kernelImagePfns(0x3400000)).toEqual([
      { start: 0x1000, end: 0x1200 },
      { start: 0x6, end: 0x8 },
    ]);
  });
});
