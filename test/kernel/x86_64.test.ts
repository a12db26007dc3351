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

  it('refuses 5-level paging and needs the top-level table symbol', () => {
    const m = buildTables(0);
    expect(() => X86_64Translator.fromVmcoreinfo(VmcoreInfo.fromEntries([['NUMBER(pgtable_l5_enabled)', 1], ['SYMBOL(init_top_pgt)', 'ffffffff80010000']]), m)).toThrow(/5-level paging/);
    expect(() => X86_64Translator.fromVmcoreinfo(VmcoreInfo.fromEntries([['PAGESIZE', 4096]]), m)).toThrow(/SYMBOL\(init_top_pgt\)/);
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
