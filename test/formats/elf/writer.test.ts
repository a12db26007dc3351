import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { AtomicFileSink } from '../../../src/io/sink.js';
import { ElfDumpWriter } from '../../../src/formats/elf/writer.js';
import { ElfDumpReader } from '../../../src/formats/elf/reader.js';
import { FileSource } from '../../../src/io/source.js';
import type { OutputPlan } from '../../../src/formats/types.js';
import { encodeVmcoreinfoNote } from '../../../src/formats/elf/elf.js';
import { taggedPage } from '../../builders/elf-builder.js';
import { tempDir, type TempDir } from '../../helpers/guests.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-elfw-');
});
afterAll(() => dir.remove());

function plan(keptPages: number, keptRuns: number, maxPfn: number): OutputPlan {
  return {
    pageSize: 4096,
    maxPfn,
    keptPages,
    keptRuns,
    dumpLevel: 31,
    notes: encodeVmcoreinfoNote('OSRELEASE=6.1.0\nPAGESIZE=4096\n'),
    vmcoreinfo: undefined,
    cpus: 1,
    utsname: { sysname: 'Linux', nodename: '', release: '6.1.0', version: '#1', machine: 'x86_64', domainname: '' },
    timestamp: 0,
    physBase: 0,
    pageOffset: 0xffff888000000000n,
  };
}

describe('ElfDumpWriter', () => {
  it('writes one PT_LOAD per run, drops zero-marked pages as gaps, keeps the notes', async () => {
    const path = dir.file('small.elf');
    const w = new ElfDumpWriter(await AtomicFileSink.create(path));
    // Plan: 7 pages in 2 runs of pfns, [10,15) and [40,42); the zero page splits the first.
    await w.begin(plan(7, 2, 64));
    const data = new Uint8Array(4 * 4096);
    for (let i = 0; i < 4; i++) data.set(taggedPage(10 + i), i * 4096);
    // pfns 10..13 with 12 a zero page: runs [10,12) and [13,14)
    await w.writePages(10, 4, data, Uint8Array.of(0, 0, 1, 0));
    const more = new Uint8Array(3 * 4096);
    for (let i = 0; i < 3; i++) more.set(taggedPage(14 + i), i * 4096);
    await w.writePages(14, 1, more.subarray(0, 4096)); // continues [13, 15)
    await w.writePages(40, 2, more.subarray(4096));
    const sum = await w.end();
    expect(sum.segments).toBe(3);
    const r = await ElfDumpReader.open(await FileSource.open(path));
    expect(r.info.segments!.map((s) => [s.paddr / 4096, s.memSize / 4096, s.vaddr - BigInt(s.paddr)])).toEqual([
      [10, 2, 0xffff888000000000n],
      [13, 2, 0xffff888000000000n],
      [40, 2, 0xffff888000000000n],
    ]);
    expect(r.info.vmcoreinfo?.osrelease).toBe('6.1.0');
    const page = new Uint8Array(4096);
    await r.readPages(14, 1, page);
    expect(page).toEqual(taggedPage(14));
    await r.readPages(41, 1, page);
    expect(page).toEqual(taggedPage(16));
    await r.close();
  });

  it('uses PN_XNUM past 65534 program headers', async () => {
    const path = dir.file('xnum.elf');
    const runs = 70_000;
    const w = new ElfDumpWriter(await AtomicFileSink.create(path));
    await w.begin(plan(runs, runs, 2 * runs));
    const page = new Uint8Array(4096);
    for (let i = 0; i < runs; i++) {
      new DataView(page.buffer).setUint32(0, i, true);
      await w.writePages(2 * i, 1, page);
    }
    await w.end();
    const head = await readFile(path, { encoding: null, flag: 'r' }).then((b) => b.subarray(0, 128));
    expect(head.readUInt16LE(56)).toBe(0xffff); // e_phnum = PN_XNUM
    const r = await ElfDumpReader.open(await FileSource.open(path));
    expect(r.info.details?.phnum).toBe(runs + 1);
    expect(r.info.segmentCount).toBe(runs);
    const st = new Uint8Array(6);
    await r.pfnStates(2 * runs - 4, 6, st);
    expect([...st]).toEqual([2, 0, 2, 0, 0, 0]);
    await r.readPages(2 * 69_999, 1, page);
    expect(new DataView(page.buffer).getUint32(0, true)).toBe(69_999);
    await r.close();
  });

  it('refuses to write more runs than planned (an internal error, not a dump error)', async () => {
    const w = new ElfDumpWriter(await AtomicFileSink.create(dir.file('bad.elf')));
    await w.begin(plan(2, 1, 10));
    await w.writePages(1, 1, new Uint8Array(4096));
    await expect(w.writePages(5, 1, new Uint8Array(4096)).then(() => w.end())).rejects.toThrow(/more PT_LOAD runs than planned/);
    await w.abort();
  });
});
