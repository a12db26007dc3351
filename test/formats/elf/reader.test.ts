import { describe, expect, it } from 'vitest';
import { BufferSource, CountingSource } from '../../../src/io/source.js';
import { ElfDumpReader } from '../../../src/formats/elf/reader.js';
import { PfnState } from '../../../src/formats/types.js';
import { buildElfCore, taggedPage, vmcoreinfoNote } from '../../builders/elf-builder.js';
import { errorOf } from '../../helpers/errors.js';

const PS = 4096;
function pages(first: number, n: number, tag = 0xa5): Uint8Array {
  const b = new Uint8Array(n * PS);
  for (let i = 0; i < n; i++) b.set(taggedPage(first + i, tag), i * PS);
  return b;
}
async function open(bytes: Uint8Array, name = 'vmcore'): Promise<ElfDumpReader> {
  return ElfDumpReader.open(new BufferSource(bytes, name));
}

describe('ElfDumpReader', () => {
  it('reads notes, VMCOREINFO, segments and pages', async () => {
    const img = buildElfCore({
      notes: [{ name: 'CORE', type: 1, desc: new Uint8Array(336) }, { name: 'CORE', type: 1, desc: new Uint8Array(336) }, vmcoreinfoNote(['OSRELEASE=5.10.0', 'PAGESIZE=4096'])],
      segments: [
        { paddr: 1 * PS, data: pages(1, 3) },
        { paddr: 8 * PS, data: pages(8, 2) },
      ],
    });
    const r = await open(img);
    expect(r.info.cpus).toBe(2);
    expect(r.info.vmcoreinfo?.osrelease).toBe('5.10.0');
    expect(r.info.maxPfn).toBe(10);
    const st = new Uint8Array(12);
    await r.pfnStates(0, 12, st);
    expect([...st]).toEqual([0, 2, 2, 2, 0, 0, 0, 0, 2, 2, 0, 0]);
    const buf = new Uint8Array(2 * PS);
    await r.readPages(2, 2, buf);
    expect(buf.subarray(0, PS)).toEqual(taggedPage(2));
    expect(buf.subarray(PS)).toEqual(taggedPage(3));
    // A physical read spanning two segments with a hole between fails; within one it works.
    const small = new Uint8Array(16);
    await r.readPhys(9 * PS + 8, 16, small);
    expect(small.subarray(0, 8)).toEqual(new Uint8Array(8).fill(0xa5));
    expect((await errorOf(r.readPhys(4 * PS, 8, small))).code).toBe('ADDRESS_UNMAPPED');
    expect((await errorOf(r.readPages(3, 2, buf))).code).toBe('ADDRESS_UNMAPPED');
  });

  it('reports p_memsz tails as RAM without data that reads as zeros', async () => {
    const img = buildElfCore({ segments: [{ paddr: 0, data: pages(0, 2), memsz: 4 * PS }] });
    const r = await open(img);
    const st = new Uint8Array(5);
    await r.pfnStates(0, 5, st);
    expect([...st]).toEqual([PfnState.PRESENT, PfnState.PRESENT, PfnState.ABSENT, PfnState.ABSENT, PfnState.HOLE]);
    const z = new Uint8Array(PS).fill(1);
    await r.readPhys(3 * PS, PS, z);
    expect(z.every((b) => b === 0)).toBe(true);
  });

  it('assembles unaligned segments and lets the first of overlapping segments win', async () => {
    // Segment A covers [0x1800, 0x3800): pfn 1 half, pfn 2 whole, pfn 3 half.
    const a = new Uint8Array(0x2000).fill(0x11);
    // Segment B (later) overlaps pfn 2-3 with other bytes, and covers pfn 4.
    const b = new Uint8Array(3 * PS).fill(0x22);
    const img = buildElfCore({ segments: [{ paddr: 0x1800, data: a }, { paddr: 2 * PS, data: b }] });
    const r = await open(img);
    const p = new Uint8Array(PS);
    await r.readPages(1, 1, p);
    expect(p[0x7ff]).toBe(0);
    expect(p[0x800]).toBe(0x11);
    await r.readPages(2, 1, p);
    expect(p.every((x) => x === 0x11)).toBe(true); // A wins over B
    await r.readPages(3, 1, p);
    expect(p[0x7ff]).toBe(0x11);
    expect(p[0x800]).toBe(0x22); // beyond A: B's bytes
    await r.readPages(4, 1, p);
    expect(p.every((x) => x === 0x22)).toBe(true);
  });

  it('handles PN_XNUM', async () => {
    const segs = Array.from({ length: 5 }, (_, i) => ({ paddr: i * 2 * PS, data: pages(i * 2, 1) }));
    const r = await open(buildElfCore({ segments: segs, xnum: true }));
    expect(r.info.details?.phnum).toBe(6);
    expect(r.info.segments?.length).toBe(5);
    const p = new Uint8Array(PS);
    await r.readPages(8, 1, p);
    expect(p).toEqual(taggedPage(8));
  });

  it('reads page data with one positional read per run', async () => {
    const img = buildElfCore({ segments: [{ paddr: 0, data: pages(0, 64) }] });
    const src = new CountingSource(new BufferSource(img));
    const r = await ElfDumpReader.open(src);
    const before = src.ranges.length;
    await r.readPages(0, 64, new Uint8Array(64 * PS));
    expect(src.ranges.length - before).toBe(1);
  });

  describe('bad input: one line naming file and offset', () => {
    it('not ELF', async () => {
      const e = await errorOf(open(Buffer.from('KDUMP   '.padEnd(64, '\0'))));
      expect(e.code).toBe('DUMP_UNSUPPORTED');
      expect(e.message).toBe('vmcore: offset 0x0: not an ELF file (bad magic)');
    });
    it('truncated header', async () => {
      const e = await errorOf(open(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1])));
      expect(e.code).toBe('DUMP_TRUNCATED');
      expect(e.message).toMatch(/^vmcore: offset 0x0: ELF header needs 64 bytes, file has 6$/);
    });
    it('program headers past EOF', async () => {
      const img = buildElfCore({ segments: [{ paddr: 0, data: pages(0, 1) }] });
      const e = await errorOf(open(img.subarray(0, 100)));
      expect(e.code).toBe('DUMP_TRUNCATED');
      expect(e.offset).toBe(64);
    });
    it('PT_LOAD past end of file', async () => {
      const img = buildElfCore({ segments: [{ paddr: 0, data: pages(0, 1) }, { paddr: PS, filesz: 8 * PS, offset: 0x10000 }] });
      const e = await errorOf(open(img));
      expect(e.code).toBe('DUMP_TRUNCATED');
      expect(e.offset).toBe(64 + 2 * 56);
      expect(e.message).toMatch(/program header 2: PT_LOAD data \[0x10000, 0x18000\) extends past end of file/);
    });
    it('p_memsz below p_filesz', async () => {
      const img = buildElfCore({ segments: [{ paddr: 0, data: pages(0, 2), memsz: PS }] });
      expect((await errorOf(open(img))).code).toBe('DUMP_CORRUPT');
    });
    it('wrong machine or type', async () => {
      expect((await errorOf(open(buildElfCore({ segments: [], machine: 183 })))).message).toMatch(/only x86_64/);
      expect((await errorOf(open(buildElfCore({ segments: [], type: 2 })))).message).toMatch(/not ET_CORE/);
    });
    it('a note running past its segment', async () => {
      const img = Buffer.from(buildElfCore({ notes: [vmcoreinfoNote(['PAGESIZE=4096'])], segments: [] }));
      img.writeUInt32LE(0x7fffffff, 64 + 56 + 4); // descsz of the first note
      const e = await errorOf(open(img));
      expect(e.code).toBe('DUMP_CORRUPT');
      expect(e.message).toMatch(/runs past the end/);
    });
  });
});
