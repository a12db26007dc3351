import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { filterDump, type FilterOptions } from '../../src/pipeline/filter.js';
import { readReasonsMap } from '../../src/pipeline/reasons-map.js';
import { CountingSource } from '../../src/io/source.js';
import { openDump } from '../../src/formats/registry.js';
import { buildElfCore } from '../builders/elf-builder.js';
import { expectedReason, makeGuest, presentPfns, readPages, readTruth, tempDir, type TempDir, type TruthRun } from '../helpers/guests.js';

let dir: TempDir;
let plain: string;
let balloon: string;
let truthPlain: TruthRun[];

beforeAll(async () => {
  dir = await tempDir();
  plain = await makeGuest(dir, 'plain.vmcore', { scenario: 'plain', size: 96 << 20, seed: 7, kernel: '5.10' });
  balloon = await makeGuest(dir, 'xen.vmcore', { scenario: 'xen-hvm-balloon', size: 96 << 20, seed: 3, kernel: '6.12' });
  truthPlain = (await readTruth(`${plain}.truth`)).runs;
});
afterAll(() => dir.remove());

async function reasonsOf(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of readReasonsMap(path)) for (let p = r.start; p < r.end; p++) out[p] = ['hole', 'kept', 'zero', 'cache', 'cache-private', 'user', 'free', 'unaccepted', 'hwpoison', 'offline', 'not-ram', 'absent'][r.reason]!;
  return out;
}

describe('filterDump on a plain guest: decisions equal the truth manifest', () => {
  for (const level of [0, 1, 2, 4, 8, 16, 31]) {
    it(`-d ${level}`, async () => {
      const out = dir.file(`plain-${level}.kdump`);
      const map = dir.file(`plain-${level}.reasons`);
      const report = await filterDump({ input: plain, output: out, dumpLevel: level, reasonsFile: map });
      const got = await reasonsOf(map);
      let checked = 0;
      const counts: Record<string, number> = {};
      for (const run of truthPlain) {
        const want = expectedReason(run, level);
        for (let p = run.start; p < run.start + run.count && p < report.input.maxPfn; p++) {
          if (want === undefined) continue;
          if (got[p] !== want) throw new Error(`pfn 0x${p.toString(16)} (${run.cls}/${run.memmap}): got ${got[p]}, want ${want}`);
          checked++;
        }
      }
      for (const r of got) if (r) counts[r] = (counts[r] ?? 0) + 1;
      expect(checked).toBeGreaterThan(20000);
      // The report's counts are those of the map.
      for (const [name, n] of Object.entries(report.pages.excluded)) expect(n, name).toBe(counts[name] ?? 0);
      expect(report.pages.kept).toBe(counts.kept ?? 0);
      // The output holds exactly the kept (and zero-redirected) pages.
      const present = await presentPfns(out);
      for (let p = 0; p < present.length; p++) {
        const shouldHave = got[p] === 'kept' || got[p] === 'zero';
        if (!!present[p] !== shouldHave) throw new Error(`pfn 0x${p.toString(16)}: present ${present[p]}, reason ${got[p]}`);
      }
    });
  }
});

describe('never reads an excluded page', () => {
  const formats = [
    { name: 'kdump', opts: { codec: 'none' as const } },
    { name: 'kdump zlib', opts: { codec: 'zlib' as const } },
    { name: 'ELF', opts: { format: 'elf' as const } },
    { name: 'flattened', opts: { flattened: true } },
  ];
  for (const f of formats) {
    it(`${f.name}: no byte of an excluded page is read (offline above all)`, async () => {
      const input = await openDump(balloon);
      const segs = input.info.segments!;
      await input.close();
      const fileRange = (pfn: number): [number, number] | undefined => {
        const pa = pfn * 4096;
        const s = segs.find((x) => x.paddr <= pa && pa + 4096 <= x.paddr + x.fileSize);
        return s ? [s.fileOffset + (pa - s.paddr), s.fileOffset + (pa - s.paddr) + 4096] : undefined;
      };
      let counter: CountingSource | undefined;
      const map = dir.file(`never-${f.name}.reasons`);
      const sinkStream = new PassThrough();
      sinkStream.resume();
      const report = await filterDump({
        input: balloon,
        output: f.opts.flattened ? undefined : dir.file(`never-${f.name.replace(' ', '-')}.out`),
        stdout: sinkStream,
        dumpLevel: 31,
        reasonsFile: map,
        ...f.opts,
        wrapSource: (src) => (counter = new CountingSource(src)),
      });
      expect(report.pages.excluded.offline).toBeGreaterThan(1000);
      let excluded = 0;
      for await (const r of readReasonsMap(map)) {
        if (r.reason === 1 || r.reason === 0 || r.reason === 2) continue; // kept, hole, zero (read to find out)
        for (let p = r.start; p < r.end; p++) {
          const fr = fileRange(p);
          if (!fr) continue;
          excluded++;
          if (counter!.touched(fr[0], fr[1])) throw new Error(`pfn 0x${p.toString(16)} (${r.reason}) was read`);
        }
      }
      expect(excluded).toBeGreaterThan(5000);
    });
  }
});

describe('reads each kept page once', () => {
  it('ELF (zero pages left out) reads what kdump reads: every kept and zero page as often, the same bytes in all', async () => {
    const input = await openDump(balloon);
    const segs = input.info.segments!;
    await input.close();
    const fileStart = (pfn: number): number | undefined => {
      const pa = pfn * 4096;
      const s = segs.find((x) => x.paddr <= pa && pa + 4096 <= x.paddr + x.fileSize);
      return s ? s.fileOffset + (pa - s.paddr) : undefined;
    };
    const run = async (name: string, opts: Partial<FilterOptions>): Promise<{ counter: CountingSource; map: string; bytesRead: number }> => {
      let counter: CountingSource | undefined;
      const map = dir.file(`once-${name}.reasons`);
      const report = await filterDump({ input: balloon, output: dir.file(`once-${name}.out`), dumpLevel: 31, reasonsFile: map, ...opts, wrapSource: (src) => (counter = new CountingSource(src)) });
      return { counter: counter!, map, bytesRead: report.bytesRead };
    };
    const kd = await run('kdump', { codec: 'none' });
    const elf = await run('elf', { format: 'elf' });
    expect(elf.bytesRead).toBe(kd.bytesRead);
    // Reads covering each page of the file, by its offset.
    const perPage = (c: CountingSource): Map<number, number> => {
      const m = new Map<number, number>();
      for (const [s, e] of c.ranges) for (let o = Math.floor(s / 4096) * 4096; o < e; o += 4096) m.set(o, (m.get(o) ?? 0) + 1);
      return m;
    };
    const a = perPage(kd.counter);
    const b = perPage(elf.counter);
    let pages = 0;
    let once = 0;
    for await (const r of readReasonsMap(kd.map)) {
      if (r.reason !== 1 && r.reason !== 2) continue; // kept, zero
      for (let p = r.start; p < r.end; p++) {
        const at = fileStart(p);
        if (at === undefined) continue;
        const n = a.get(at) ?? 0;
        if ((b.get(at) ?? 0) !== n) throw new Error(`pfn 0x${p.toString(16)}: read ${b.get(at) ?? 0} times for ELF, ${n} for kdump`);
        pages++;
        if (n === 1) once++;
      }
    }
    expect(pages).toBeGreaterThan(3000);
    // Only pages that also hold struct pages or headers are read more than once.
    expect(once / pages).toBeGreaterThan(0.9);
  });
});

describe('outputs hold the input pages, exactly', () => {
  it('kdump (zstd) and ELF outputs read back byte-identical for every kept page; ELF has no excluded page at all', async () => {
    const kd = dir.file('rt.kdump');
    const elf = dir.file('rt.elf');
    const map = dir.file('rt.reasons');
    await filterDump({ input: balloon, output: kd, dumpLevel: 31, codec: 'zstd' });
    await filterDump({ input: balloon, output: elf, dumpLevel: 31, format: 'elf', reasonsFile: map });
    const reasons = await reasonsOf(map);
    const pk = await presentPfns(kd);
    const pe = await presentPfns(elf);
    let compared = 0;
    for (let p = 0; p < reasons.length; p++) {
      if (reasons[p] !== 'kept') {
        expect(pe[p] ?? 0, `ELF pfn 0x${p.toString(16)} (${reasons[p]})`).toBe(0);
        continue;
      }
      expect(pk[p]).toBe(1);
      expect(pe[p]).toBe(1);
      if (p % 97 === 0) {
        const a = await readPages(balloon, p, 1);
        expect(Buffer.from(await readPages(kd, p, 1)).equals(a)).toBe(true);
        expect(Buffer.from(await readPages(elf, p, 1)).equals(a)).toBe(true);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(20);
  });

  it('flattened output to a stream carries the same dump as the plain file', async () => {
    const plainOut = dir.file('flat-ref.kdump');
    await filterDump({ input: plain, output: plainOut, dumpLevel: 31, codec: 'lzo' });
    const flatOut = dir.file('flat.out');
    const stream = createWriteStream(flatOut);
    await filterDump({ input: plain, flattened: true, stdout: stream, dumpLevel: 31, codec: 'lzo' });
    await new Promise<void>((resolve) => stream.end(resolve));
    const a = await presentPfns(plainOut);
    const b = await presentPfns(flatOut);
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
    expect((await stat(flatOut)).size).toBeGreaterThan((await stat(plainOut)).size);
  });
});

describe('compression workers started before the plan pass', () => {
  const bytesOf = async (path: string): Promise<Buffer> => (await import('node:fs/promises')).readFile(path);

  it('write what workers started with the writer write, and what the main thread writes', async () => {
    const early = dir.file('early.kdump');
    const late = dir.file('late.kdump');
    const main = dir.file('main.kdump');
    const a = await filterDump({ input: plain, output: early, dumpLevel: 0, codec: 'zlib', threads: 2, earlyWorkersMinPfns: 0 });
    const b = await filterDump({ input: plain, output: late, dumpLevel: 0, codec: 'zlib', threads: 2, earlyWorkersMinPfns: Number.MAX_SAFE_INTEGER });
    await filterDump({ input: plain, output: main, dumpLevel: 0, codec: 'zlib', threads: 0 });
    expect(a.pages.kept).toBeGreaterThan(4096);
    expect(a.output.workers).toBe(2);
    expect(b.output.workers).toBe(2);
    const want = await bytesOf(main);
    expect((await bytesOf(early)).equals(want)).toBe(true);
    expect((await bytesOf(late)).equals(want)).toBe(true);
  });

  it('an output too small for workers is compressed on the main thread all the same', async () => {
    const small = await makeGuest(dir, 'virtio.vmcore', { scenario: 'virtio-balloon', size: 96 << 20, seed: 3, kernel: '6.1' });
    const early = dir.file('early-small.kdump');
    const main = dir.file('main-small.kdump');
    const a = await filterDump({ input: small, output: early, dumpLevel: 31, codec: 'zstd', threads: 2, earlyWorkersMinPfns: 0 });
    await filterDump({ input: small, output: main, dumpLevel: 31, codec: 'zstd', threads: 0 });
    // Zero pages have descriptors too: all of them count towards the writer's pool threshold (4096).
    expect(a.pages.kept + (a.pages.excluded.zero ?? 0)).toBeLessThan(4096);
    expect(a.output.workers ?? 0).toBe(0);
    expect((await bytesOf(early)).equals(await bytesOf(main))).toBe(true);
  });
});

describe('zero pages (-d 1)', () => {
  it('a page is zero only when every byte is: one non-zero byte anywhere keeps it', async () => {
    // Page k of the image is zero but for one byte at offsets[k] (-1: all zero).
    const offsets = [-1, 0, 15, 16, 2048, 4079, 4080, 4095, -1, 7, 4092, 3000];
    const data = new Uint8Array(offsets.length * 4096);
    offsets.forEach((o, k) => {
      if (o >= 0) data[k * 4096 + o] = 0x5a;
    });
    const input = dir.file('onebyte.vmcore');
    await (await import('node:fs/promises')).writeFile(input, buildElfCore({ segments: [{ paddr: 0x100000, data }] }));
    const map = dir.file('onebyte.reasons');
    const report = await filterDump({ input, output: dir.file('onebyte.kdump'), dumpLevel: 1, reasonsFile: map });
    const got = await reasonsOf(map);
    expect(offsets.map((_, k) => got[0x100 + k])).toEqual(offsets.map((o) => (o < 0 ? 'zero' : 'kept')));
    expect(report.pages.excluded.zero).toBe(2);
    // The kept pages hold their byte in the output.
    const out = await openDump(dir.file('onebyte.kdump'));
    const page = new Uint8Array(4096);
    for (const [k, o] of offsets.entries()) {
      if (o < 0) continue;
      await out.readPages(0x100 + k, 1, page);
      expect(page.findIndex((b) => b !== 0)).toBe(o);
    }
    await out.close();
  });
});
