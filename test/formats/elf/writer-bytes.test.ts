/**
 * The ELF writer checked byte by byte: every header field and file offset
 * the test expects is computed here from the ELF gABI layout (Elf64_Ehdr
 * 64 bytes, Elf64_Phdr 56 bytes, notes after the program headers, page
 * data from the next page boundary), never through the project's reader.
 */
import { describe, expect, it } from 'vitest';
import { ElfDumpWriter } from '../../../src/formats/elf/writer.js';
import type { OutputPlan } from '../../../src/formats/types.js';
import { MemorySink } from '../kdump/memory-sink.js';

const PS = 4096;
const PAGE_OFFSET = 0xffff888000000000n;

function page(tag: number): Uint8Array {
  const p = new Uint8Array(PS);
  for (let i = 0; i < PS; i += 4) new DataView(p.buffer).setUint32(i, (tag * 0x9e3779b1 + i) >>> 0, true);
  return p;
}

function plan(keptPages: number, keptRuns: number, notes: Uint8Array, maxPfn = 0x100): OutputPlan {
  return {
    pageSize: PS,
    maxPfn,
    keptPages,
    keptRuns,
    dumpLevel: 1,
    notes,
    vmcoreinfo: undefined,
    cpus: 1,
    utsname: { sysname: 'Linux', nodename: '', release: '6.1.0', version: '#1', machine: 'x86_64', domainname: '' },
    timestamp: 0,
    physBase: 0,
    pageOffset: PAGE_OFFSET,
  };
}

describe('ElfDumpWriter bytes', () => {
  it('Ehdr, one PT_NOTE, one PT_LOAD per run, notes and page data exactly where the layout puts them', async () => {
    const notes = Uint8Array.from({ length: 52 }, (_, i) => i + 1);
    const sink = new MemorySink('out.elf');
    const w = new ElfDumpWriter(sink);
    // Kept: pfns 0x10-0x12 (0x12 a zero page), 0x30. Runs: [0x10,0x12), [0x30,0x31).
    await w.begin(plan(4, 2, notes));
    const data = new Uint8Array(3 * PS);
    data.set(page(0x10), 0);
    data.set(page(0x11), PS);
    await w.writePages(0x10, 3, data, Uint8Array.of(0, 0, 1));
    await w.writePages(0x30, 1, page(0x30));
    await w.end();
    const b = sink.bytes;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const u64 = (o: number): bigint => dv.getBigUint64(o, true);

    // Elf64_Ehdr.
    expect([...b.subarray(0, 8)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // ELFMAG, ELFCLASS64, ELFDATA2LSB, EV_CURRENT
    expect(dv.getUint16(16, true)).toBe(4); // ET_CORE
    expect(dv.getUint16(18, true)).toBe(62); // EM_X86_64
    expect(dv.getUint32(20, true)).toBe(1);
    expect(u64(32)).toBe(64n); // e_phoff
    expect(u64(40)).toBe(0n); // e_shoff
    expect(dv.getUint32(48, true)).toBe(0); // e_flags: complete
    expect(dv.getUint16(52, true)).toBe(64); // e_ehsize
    expect(dv.getUint16(54, true)).toBe(56); // e_phentsize
    expect(dv.getUint16(56, true)).toBe(3); // e_phnum: PT_NOTE + 2 PT_LOAD

    // Notes right after the 3 program headers; data from the next page.
    const notesAt = 64 + 3 * 56;
    const dataAt = Math.ceil((notesAt + notes.length) / PS) * PS;
    const ph = (i: number): Record<string, bigint | number> => {
      const o = 64 + i * 56;
      return { type: dv.getUint32(o, true), flags: dv.getUint32(o + 4, true), offset: u64(o + 8), vaddr: u64(o + 16), paddr: u64(o + 24), filesz: u64(o + 32), memsz: u64(o + 40) };
    };
    expect(ph(0)).toMatchObject({ type: 4, offset: BigInt(notesAt), filesz: BigInt(notes.length), memsz: BigInt(notes.length) });
    expect([...b.subarray(notesAt, notesAt + notes.length)]).toEqual([...notes]);
    expect(ph(1)).toEqual({ type: 1, flags: 7, offset: BigInt(dataAt), vaddr: PAGE_OFFSET + 0x10000n, paddr: 0x10000n, filesz: 0x2000n, memsz: 0x2000n });
    expect(ph(2)).toEqual({ type: 1, flags: 7, offset: BigInt(dataAt + 2 * PS), vaddr: PAGE_OFFSET + 0x30000n, paddr: 0x30000n, filesz: 0x1000n, memsz: 0x1000n });
    expect(b.subarray(dataAt, dataAt + PS)).toEqual(page(0x10));
    expect(b.subarray(dataAt + PS, dataAt + 2 * PS)).toEqual(page(0x11));
    expect(b.subarray(dataAt + 2 * PS, dataAt + 3 * PS)).toEqual(page(0x30));
    // Nothing after the last page: the zero page 0x12 was left out.
    expect(b.length).toBe(dataAt + 3 * PS);
    expect(sink.committed).toBe(true);
  });

  it('splits runs at zero pages while the room for program headers lasts, then writes them as data and unmarks them', async () => {
    // One run of 10,001 pages, every odd page zero: 5,000 zero pages inside
    // the run. The room: a PT_NOTE, one PT_LOAD per run and 4,096 more (the
    // cap of splits for a plan of fewer than 4,096 runs), so the first
    // 4,096 zero pages split the run and the other 904 are written as data.
    const N = 10_001;
    const notes = Uint8Array.from({ length: 20 }, (_, i) => 0xa0 + i);
    const sink = new MemorySink('split.elf');
    const w = new ElfDumpWriter(sink);
    await w.begin(plan(N, 1, notes, N));
    const marks = new Uint8Array(N);
    const data = new Uint8Array(64 * PS);
    for (let first = 0; first < N; first += 64) {
      const n = Math.min(64, N - first);
      const mask = new Uint8Array(n);
      for (let k = 0; k < n; k++) {
        const pfn = first + k;
        mask[k] = pfn % 2;
        data.set(pfn % 2 ? new Uint8Array(PS) : page(pfn), k * PS);
      }
      await w.writePages(first, n, data.subarray(0, n * PS), mask);
      marks.set(mask, first);
    }
    const sum = await w.end();
    expect(sum.segments).toBe(4097);
    expect(sum.zeroPagesStored).toBe(904);
    expect(sum.pagesWritten).toBe(5001 + 904);
    // The marks left are the zero pages left out: odd pfns below 8192.
    for (let pfn = 0; pfn < N; pfn++) expect(marks[pfn], `pfn ${pfn}`).toBe(pfn % 2 === 1 && pfn < 8192 ? 1 : 0);

    const b = sink.bytes;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const phnum = 1 + 4097;
    expect(dv.getUint16(56, true)).toBe(phnum);
    const notesAt = 64 + phnum * 56;
    const room = 1 + 1 + 4096;
    const dataAt = Math.ceil((64 + room * 56 + notes.length) / PS) * PS;
    expect(dv.getBigUint64(64 + 8, true)).toBe(BigInt(notesAt));
    expect([...b.subarray(notesAt, notesAt + notes.length)]).toEqual([...notes]);
    // Between the notes and the data, the unused room reads as zeros.
    expect(b.subarray(notesAt + notes.length, dataAt).every((x) => x === 0)).toBe(true);
    const load = (i: number): { offset: number; paddr: number; filesz: number } => {
      const o = 64 + i * 56;
      expect(dv.getUint32(o, true)).toBe(1);
      return { offset: Number(dv.getBigUint64(o + 8, true)), paddr: Number(dv.getBigUint64(o + 24, true)), filesz: Number(dv.getBigUint64(o + 32, true)) };
    };
    // PT_LOAD m (1-based) holds pfn 2(m-1) alone, the m-th page of data.
    for (const m of [1, 2, 4096]) expect(load(m)).toEqual({ offset: dataAt + (m - 1) * PS, paddr: 2 * (m - 1) * PS, filesz: PS });
    // The last one: pfns 8192..10000, zero pages included.
    const last = load(4097);
    expect(last).toEqual({ offset: dataAt + 4096 * PS, paddr: 8192 * PS, filesz: (N - 8192) * PS });
    expect(b.subarray(last.offset, last.offset + PS)).toEqual(page(8192));
    expect(b.subarray(last.offset + PS, last.offset + 2 * PS).every((x) => x === 0)).toBe(true);
    expect(b.subarray(last.offset + (N - 1 - 8192) * PS, last.offset + (N - 8192) * PS)).toEqual(page(N - 1));
    expect(b.length).toBe(last.offset + last.filesz);
  });

  it('zero pages at the ends of runs cost no program header', async () => {
    // Runs [0x10,0x14) and [0x20,0x22): zero pages 0x10 (first), 0x13 (last), 0x21 (last).
    const notes = new Uint8Array(8).fill(7);
    const sink = new MemorySink('ends.elf');
    const w = new ElfDumpWriter(sink);
    await w.begin(plan(6, 2, notes));
    const data = new Uint8Array(4 * PS);
    data.set(page(0x11), PS);
    data.set(page(0x12), 2 * PS);
    await w.writePages(0x10, 4, data, Uint8Array.of(1, 0, 0, 1));
    const data2 = new Uint8Array(2 * PS);
    data2.set(page(0x20), 0);
    await w.writePages(0x20, 2, data2, Uint8Array.of(0, 1));
    const sum = await w.end();
    expect(sum).toMatchObject({ segments: 2, pagesWritten: 3, zeroPagesStored: 0 });
    const b = sink.bytes;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    expect(dv.getUint16(56, true)).toBe(3);
    expect(dv.getBigUint64(64 + 56 + 24, true)).toBe(0x11000n);
    expect(dv.getBigUint64(64 + 56 + 32, true)).toBe(0x2000n);
    expect(dv.getBigUint64(64 + 112 + 24, true)).toBe(0x20000n);
    expect(dv.getBigUint64(64 + 112 + 32, true)).toBe(0x1000n);
  });
});
