import { createHash, randomBytes } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { describe, expect, it } from 'vitest';
import { BufferSource } from '../../../src/io/source.js';
import { KdumpWriter, startCompressionWorkers } from '../../../src/formats/kdump/writer.js';
import { allocPoolJob, type CompressionPool } from '../../../src/formats/kdump/codecs/pool.js';
import { KdumpReader } from '../../../src/formats/kdump/reader.js';
import { PfnState, type Codec } from '../../../src/formats/types.js';
import { noteBytes, taggedPage } from '../../builders/elf-builder.js';
import { lzoDecodeSimple, snappyDecodeSimple } from '../../builders/kdump-builder.js';
import { MemorySink } from './memory-sink.js';
import { TEST_VMCOREINFO, driveWriter, pageContent, planFor, type DriveSpec } from './drive.js';

const PS = 4096;
const FLAGS: Record<Codec, number> = { none: 0, zlib: 1, lzo: 2, snappy: 4, zstd: 0x20 };
const RANDOM = randomBytes(PS);

/** Incompressible but reproducible page content. */
function noisePage(p: number): Uint8Array {
  return Buffer.concat(Array.from({ length: PS / 64 }, (_, i) => createHash('sha512').update(`${p}:${i}`).digest()));
}

/** 600 pfns: RAM [0, 500) and [520, 600); kept with gaps; zero pages every 7th; pfn 10 random. */
function spec(extra: Partial<DriveSpec> = {}): DriveSpec {
  return {
    maxPfn: 600,
    ram: [
      [0, 500],
      [520, 600],
    ],
    kept: [
      [1, 100],
      [120, 121],
      [200, 480],
      [530, 600],
    ],
    zero: (p) => p % 7 === 0,
    content: (p) => (p === 10 ? RANDOM : taggedPage(p)),
    dumpLevel: 1,
    notes: noteBytes([
      { name: 'CORE', type: 1, desc: new Uint8Array(336) },
      { name: 'CORE', type: 1, desc: new Uint8Array(336) },
      { name: 'VMCOREINFO', type: 0, desc: Buffer.from(TEST_VMCOREINFO, 'latin1') },
    ]),
    vmcoreinfo: TEST_VMCOREINFO,
    cpus: 2,
    window: 64,
    chunk: 37,
    ...extra,
  };
}

async function write(codec: Codec, s: DriveSpec, threads = 0): Promise<{ sink: MemorySink; bytes: Uint8Array; summary: Awaited<ReturnType<typeof driveWriter>> }> {
  const sink = new MemorySink();
  const summary = await driveWriter(new KdumpWriter(sink, codec, { threads }), s);
  return { sink, bytes: sink.bytes, summary };
}

const keptPfns = (s: DriveSpec): number[] => s.kept.flatMap(([a, b]) => Array.from({ length: b - a }, (_, i) => a + i));

/** Decoders independent of the production codecs: zlib, fzstd, and the builder's plain LZO1X and Snappy readers. */
function libDecode(flags: number, stored: Uint8Array): Uint8Array {
  const b = Buffer.from(stored);
  switch (flags) {
    case 0:
      return b;
    case 1:
      return inflateSync(b);
    case 2:
      return lzoDecodeSimple(b);
    case 4:
      return snappyDecodeSimple(b);
    case 0x20:
      return zstdDecompress(b);
    default:
      throw new Error(`flags ${flags}`);
  }
}

describe('KdumpWriter layout (checked by hand, not by the reader)', () => {
  for (const codec of ['none', 'zlib', 'lzo', 'snappy', 'zstd'] as const) {
    it(`${codec}: headers, bitmaps, descriptors and data where makedumpfile puts them`, async () => {
      const s = spec();
      const { bytes, summary, sink } = await write(codec, s);
      expect(sink.committed).toBe(true);
      const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const notes = s.notes!;
      // disk_dump_header
      expect(b.toString('latin1', 0, 8)).toBe('KDUMP   ');
      expect(b.readInt32LE(8)).toBe(6);
      expect(b.toString('latin1', 12, 17)).toBe('Linux');
      expect(b.toString('latin1', 12 + 2 * 65, 12 + 2 * 65 + 20)).toBe('6.1.0-dumpsieve-test');
      expect(b.toString('latin1', 12 + 4 * 65, 12 + 4 * 65 + 7)).toBe('x86_64\0');
      expect(b.readBigInt64LE(408)).toBe(1_700_000_000n);
      expect(b.readUInt32LE(424)).toBe(FLAGS[codec]);
      expect(b.readInt32LE(428)).toBe(PS);
      const subHdr = Math.ceil((104 + notes.length) / PS);
      expect(b.readInt32LE(432)).toBe(subHdr);
      const each = Math.ceil(Math.ceil(600 / 8) / PS);
      expect(b.readUInt32LE(436)).toBe(2 * each);
      expect(b.readUInt32LE(440)).toBe(600);
      expect(b.readInt32LE(460)).toBe(2);
      // kdump_sub_header
      expect(b.readInt32LE(PS + 8)).toBe(1); // dump_level
      expect(b.readInt32LE(PS + 12)).toBe(0); // split
      const offNote = Number(b.readBigUInt64LE(PS + 48));
      expect(offNote).toBe(PS + 104);
      expect(Number(b.readBigUInt64LE(PS + 56))).toBe(notes.length);
      expect(Buffer.compare(b.subarray(offNote, offNote + notes.length), Buffer.from(notes))).toBe(0);
      const offVi = Number(b.readBigUInt64LE(PS + 32));
      const sizeVi = Number(b.readBigUInt64LE(PS + 40));
      expect(b.toString('latin1', offVi, offVi + sizeVi)).toBe(TEST_VMCOREINFO);
      expect(offVi).toBeGreaterThan(offNote);
      expect(Number(b.readBigUInt64LE(PS + 96))).toBe(600);
      // bitmaps
      const bm1 = (1 + subHdr) * PS;
      const bm2 = bm1 + each * PS;
      const bit = (base: number, p: number): boolean => (b[base + (p >> 3)]! & (1 << (p & 7))) !== 0;
      for (let p = 0; p < 600; p++) {
        expect(bit(bm1, p), `ram bit ${p}`).toBe((p < 500) || (p >= 520));
        expect(bit(bm2, p), `dumped bit ${p}`).toBe(keptPfns(s).includes(p));
      }
      // bits past max_mapnr stay clear
      for (let p = 600; p < each * PS * 8; p += 97) expect(bit(bm1, p) || bit(bm2, p)).toBe(false);
      // descriptors, then data; the first data page is the shared zero page
      const descOff = bm2 + each * PS;
      const kept = keptPfns(s);
      const dataStart = descOff + kept.length * 24;
      expect(Buffer.compare(b.subarray(dataStart, dataStart + PS), Buffer.alloc(PS))).toBe(0);
      let expectPos = dataStart + PS;
      let compressed = 0;
      kept.forEach((pfn, i) => {
        const o = descOff + i * 24;
        const off = Number(b.readBigInt64LE(o));
        const size = b.readUInt32LE(o + 8);
        const flags = b.readUInt32LE(o + 12);
        expect(b.readBigUInt64LE(o + 16)).toBe(0n);
        if (pfn % 7 === 0) {
          expect([off, size, flags]).toEqual([dataStart, PS, 0]);
          return;
        }
        // Pages follow each other in pfn order.
        expect(off).toBe(expectPos);
        expectPos += size;
        if (pfn === 10 || codec === 'none') {
          expect([size, flags]).toEqual([PS, 0]);
        } else {
          expect(flags).toBe(FLAGS[codec]);
          expect(size).toBeLessThan(PS);
          compressed++;
        }
        expect(Buffer.compare(Buffer.from(libDecode(flags, b.subarray(off, off + size))), Buffer.from(pageContent(s, pfn)))).toBe(0);
      });
      expect(bytes.length).toBe(expectPos);
      expect(summary).toMatchObject({ bytes: expectPos, pagesWritten: kept.length, dataBytes: expectPos - dataStart, pagesCompressed: compressed });
    });
  }

  it('writes the zero page with dump level bit 1 even when no page is zero, and not without', async () => {
    const noZero = spec({ zero: () => false, content: (p) => taggedPage(p) });
    const withLevel = (await write('zlib', noZero)).bytes;
    const without = (await write('zlib', { ...noZero, dumpLevel: 0 })).bytes;
    expect(withLevel.length - without.length).toBe(PS);
  });

  it('makes the zero page on demand when zero pages come without dump level bit 1', async () => {
    const s = spec({ dumpLevel: 16 });
    const sink = new MemorySink();
    const w = new KdumpWriter(sink, 'lzo', { threads: 0 });
    const plan = planFor(s);
    await w.begin(plan);
    const ram = new Uint8Array(75).fill(0xff);
    const dumped = new Uint8Array(75);
    dumped[0] = 0b110; // pfns 1, 2
    await w.bitmaps({ start: 0, count: 600, ram, dumped });
    const data = new Uint8Array(2 * PS);
    data.set(taggedPage(1), 0);
    await w.writePages(1, 2, data, Uint8Array.of(0, 1));
    // The plan said more pages: end() refuses.
    await expect(w.end()).rejects.toThrow(/internal error: 2 pages written, the plan has/);
    expect(sink.committed).toBe(false);
    await w.abort();
    expect(sink.aborted).toBe(true);
  });

  it('appends a VMCOREINFO note when the notes lack one, and copies no notes when there are none', async () => {
    const { bytes } = await write('zstd', spec({ notes: noteBytes([{ name: 'CORE', type: 1, desc: new Uint8Array(336) }]) }));
    const r = await KdumpReader.open(new BufferSource(bytes, 'x'));
    expect(r.info.vmcoreinfo?.raw).toBe(TEST_VMCOREINFO);
    expect(r.info.cpus).toBe(1);
    const b = Buffer.from(bytes);
    const offVi = Number(b.readBigUInt64LE(PS + 32));
    expect(b.toString('latin1', offVi, offVi + TEST_VMCOREINFO.length)).toBe(TEST_VMCOREINFO);

    const bare = Buffer.from((await write('zstd', spec({ notes: new Uint8Array(0), vmcoreinfo: undefined }))).bytes);
    expect(bare.readInt32LE(432)).toBe(1);
    expect([bare.readBigUInt64LE(PS + 32), bare.readBigUInt64LE(PS + 40), bare.readBigUInt64LE(PS + 48), bare.readBigUInt64LE(PS + 56)]).toEqual([0n, 0n, 0n, 0n]);
  });

  it('clamps max_mapnr to 32 bits and keeps the full value in max_mapnr_64', async () => {
    const sink = new MemorySink();
    const w = new KdumpWriter(sink, 'none', { threads: 0 });
    const maxPfn = 2 ** 32 + 5;
    await w.begin({ ...planFor(spec()), maxPfn, keptPages: 0 });
    const b = Buffer.from(sink.bytes);
    expect(b.readUInt32LE(440)).toBe(0xffffffff);
    expect(Number(b.readBigUInt64LE(PS + 96))).toBe(maxPfn);
    expect(b.readUInt32LE(436)).toBe(2 * Math.ceil(Math.ceil(maxPfn / 8) / PS));
    await w.abort();
  });

  it('refuses pages out of order, beyond the plan, and bitmaps with gaps', async () => {
    const mk = async (): Promise<KdumpWriter> => {
      const w = new KdumpWriter(new MemorySink(), 'none', { threads: 0 });
      await w.begin({ ...planFor(spec()), keptPages: 2 });
      return w;
    };
    const page = new Uint8Array(2 * PS);
    const a = await mk();
    await a.writePages(5, 1, page);
    await expect(a.writePages(4, 1, page)).rejects.toThrow(/arrive after/);
    const b = await mk();
    await expect(b.writePages(5, 3, new Uint8Array(3 * PS))).rejects.toThrow(/3 pages written, the plan has 2/);
    const c = await mk();
    await expect(c.bitmaps({ start: 8, count: 8, ram: new Uint8Array(1), dumped: new Uint8Array(1) })).rejects.toThrow(/expected 0/);
    const d = await mk();
    await d.bitmaps({ start: 0, count: 8, ram: Uint8Array.of(0xff), dumped: Uint8Array.of(0b11) });
    await d.writePages(0, 2, page);
    await expect(d.end()).rejects.toThrow(/bitmaps cover pfns \[0, 8\) of \[0, 600\)/);
  });

  it('keeps large positional writes (no write per page)', async () => {
    const s = spec({ window: 32768, chunk: 256 });
    const { sink } = await write('zlib', s);
    // header, 2 bitmaps, descriptors and data: a handful of writes for ~450 pages.
    expect(sink.writes.length).toBeLessThan(8);
  });
});

describe('KdumpWriter → KdumpReader round trips', () => {
  for (const codec of ['none', 'zlib', 'lzo', 'snappy', 'zstd'] as const) {
    it(`${codec}: every kept page reads back, excluded ones are absent`, async () => {
      const s = spec();
      const { bytes } = await write(codec, s);
      const r = await KdumpReader.open(new BufferSource(bytes, 'rt'));
      expect(r.info.compression).toBe(codec);
      expect(r.info.dumpLevel).toBe(1);
      const st = new Uint8Array(600);
      await r.pfnStates(0, 600, st);
      const kept = new Set(keptPfns(s));
      for (let p = 0; p < 600; p++) {
        expect(st[p], `pfn ${p}`).toBe(kept.has(p) ? PfnState.PRESENT : p < 500 || p >= 520 ? PfnState.ABSENT : PfnState.HOLE);
      }
      const buf = new Uint8Array(280 * PS);
      await r.readPages(200, 280, buf);
      for (let i = 0; i < 280; i++) expect(Buffer.compare(Buffer.from(buf.subarray(i * PS, (i + 1) * PS)), Buffer.from(pageContent(s, 200 + i)))).toBe(0);
      const one = new Uint8Array(PS);
      await r.readPages(10, 1, one);
      expect(Buffer.compare(Buffer.from(one), RANDOM)).toBe(0);
    });
  }

  // Enough pages for the pool to start (4096+), content varied.
  const poolSized: DriveSpec = {
    maxPfn: 6000,
    ram: [[0, 6000]],
    kept: [
      [0, 2000],
      [2100, 5000],
    ],
    zero: (p) => p % 11 === 3,
    content: (p) => (p % 13 === 0 ? noisePage(p) : taggedPage(p)),
    dumpLevel: 1,
    vmcoreinfo: TEST_VMCOREINFO,
  };

  for (const codec of ['zlib', 'lzo', 'snappy', 'zstd'] as const) {
    it(`${codec}: the worker pool writes the same file as one thread`, async () => {
      const s = poolSized;
      const single = await write(codec, s, 0);
      const pooled = await write(codec, s, 2);
      expect(pooled.bytes.length).toBe(single.bytes.length);
      expect(Buffer.compare(Buffer.from(pooled.bytes), Buffer.from(single.bytes))).toBe(0);
      const r = await KdumpReader.open(new BufferSource(pooled.bytes, 'pool'));
      const buf = new Uint8Array(PS);
      for (const p of [0, 13, 14, 1999, 2100, 2613, 4999]) {
        await r.readPages(p, 1, buf);
        expect(Buffer.compare(Buffer.from(buf), Buffer.from(pageContent(s, p))), `pfn ${p}`).toBe(0);
      }
    });
  }

  describe('workers started ahead (startCompressionWorkers, KdumpWriterOptions.pool)', () => {
    const closed = async (pool: CompressionPool): Promise<boolean> =>
      pool.run(allocPoolJob(1, PS), 1).then(
        () => false,
        (err: Error) => /closed/.test(err.message),
      );
    const ahead = async (codec: Codec, s: DriveSpec, pool: CompressionPool | undefined) => {
      const sink = new MemorySink();
      const summary = await driveWriter(new KdumpWriter(sink, codec, { threads: 2, pool }), s);
      return { bytes: sink.bytes, summary };
    };

    it('starts none where begin() would start none', () => {
      expect(startCompressionWorkers('none', PS, { threads: 2 }, 1 << 20)).toBeUndefined();
      expect(startCompressionWorkers('zlib', PS, { threads: 0 }, 1 << 20)).toBeUndefined();
      expect(startCompressionWorkers('zlib', PS, { threads: 2 }, 4095)).toBeUndefined();
    });

    it('a large output is compressed by the workers handed over, which end() closes; same bytes as one thread', async () => {
      const pool = startCompressionWorkers('zlib', PS, { threads: 2 }, poolSized.maxPfn)!;
      expect(pool.threads).toBe(2);
      const got = await ahead('zlib', poolSized, pool);
      expect(got.summary.workers).toBe(2);
      expect(await closed(pool)).toBe(true);
      const single = await write('zlib', poolSized, 0);
      expect(Buffer.compare(Buffer.from(got.bytes), Buffer.from(single.bytes))).toBe(0);
    });

    it('a small output closes them and compresses on the calling thread', async () => {
      const pool = startCompressionWorkers('zlib', PS, { threads: 2 }, poolSized.maxPfn)!;
      const got = await ahead('zlib', spec(), pool);
      expect(got.summary.workers).toBe(0);
      expect(await closed(pool)).toBe(true);
      expect(Buffer.compare(Buffer.from(got.bytes), Buffer.from((await write('zlib', spec(), 0)).bytes))).toBe(0);
    });

    it('workers of another codec are closed and the right ones started', async () => {
      const pool = startCompressionWorkers('lzo', PS, { threads: 2 }, poolSized.maxPfn)!;
      const got = await ahead('zlib', poolSized, pool);
      expect(got.summary.workers).toBe(2);
      expect(await closed(pool)).toBe(true);
      expect(Buffer.compare(Buffer.from(got.bytes), Buffer.from((await write('zlib', poolSized, 0)).bytes))).toBe(0);
    });

    it('abort() before begin() closes them', async () => {
      const pool = startCompressionWorkers('zlib', PS, { threads: 2 }, poolSized.maxPfn)!;
      await new KdumpWriter(new MemorySink(), 'zlib', { threads: 2, pool }).abort();
      expect(await closed(pool)).toBe(true);
    });
  });
});
