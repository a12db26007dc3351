import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CODEC_FLAG,
  PageCompressor,
  PageDecompressor,
  allocBatch,
  codecOfFlags,
  snappyLength,
  type PageCodecName,
} from '../../../src/formats/kdump/codecs/index.js';
import { CompressionPool, allocPoolJob } from '../../../src/formats/kdump/codecs/pool.js';
import { taggedPage } from '../../builders/elf-builder.js';

const require = createRequire(import.meta.url);
const lzo = require('lzo') as { compress(b: Buffer): Buffer; decompress(b: Buffer, n: number): Buffer };

const PS = 4096;
const CODECS: PageCodecName[] = ['zlib', 'lzo', 'snappy', 'zstd'];

/** Pages: 0 tagged (compressible), 1 random (incompressible), 2 zero, 3 text-like. */
function samplePages(): Uint8Array {
  const b = new Uint8Array(4 * PS);
  b.set(taggedPage(7), 0);
  b.set(randomBytes(PS), PS);
  b.set(Buffer.from('kernel text '.repeat(PS / 12 + 1).slice(0, PS), 'latin1'), 3 * PS);
  return b;
}

/** An independent decoder per codec (the libraries' own one-shot APIs). */
function libDecode(codec: PageCodecName, stored: Uint8Array): Buffer {
  const b = Buffer.from(stored);
  switch (codec) {
    case 'zlib':
      return inflateSync(b);
    case 'lzo':
      return lzo.decompress(b, PS);
    case 'snappy':
      return snappyUncompress(b, { asBuffer: true }) as Buffer;
    case 'zstd':
      return zstdDecompress(b);
  }
}

describe('codec flags', () => {
  it('maps page_desc flags to codecs and rejects combinations', () => {
    expect(CODEC_FLAG).toEqual({ none: 0, zlib: 1, lzo: 2, snappy: 4, zstd: 0x20 });
    expect(codecOfFlags(0x20)).toBe('zstd');
    expect(codecOfFlags(0)).toBe('none');
    expect(codecOfFlags(0x3)).toBeUndefined();
    expect(codecOfFlags(0x8)).toBeUndefined();
  });
});

describe('PageCompressor', () => {
  for (const codec of CODECS) {
    it(`${codec}: stores shrinking pages compressed and the random page raw`, () => {
      const input = samplePages();
      const out = allocBatch(4, PS);
      new PageCompressor(codec, PS).compress(input, 4, out);
      expect(out.count).toBe(4);
      // The random page does not shrink: raw, flags 0, a full block.
      expect(out.flags[1]).toBe(0);
      expect(out.sizes[1]).toBe(PS);
      let at = 0;
      for (let i = 0; i < 4; i++) {
        const size = out.sizes[i]!;
        const stored = out.data.subarray(at, at + size);
        const page = input.subarray(i * PS, (i + 1) * PS);
        if (i !== 1) {
          expect(out.flags[i]).toBe(CODEC_FLAG[codec]);
          expect(size).toBeLessThan(PS);
          // Readable by the library's own decoder: the stored format is the standard one.
          expect(Buffer.compare(libDecode(codec, stored), page)).toBe(0);
        } else {
          expect(Buffer.compare(Buffer.from(stored), page)).toBe(0);
        }
        at += size;
      }
      expect(out.length).toBe(at);
    });
  }

  it('zlib output is an RFC 1950 stream at level 1 (makedumpfile Z_BEST_SPEED)', () => {
    const page = taggedPage(3);
    const out = allocBatch(1, PS);
    new PageCompressor('zlib', PS).compress(page, 1, out);
    const stored = out.data.subarray(0, out.sizes[0]);
    expect(stored[0]).toBe(0x78);
    expect(((stored[0]! << 8) | stored[1]!) % 31).toBe(0);
    expect(Buffer.compare(Buffer.from(stored), deflateSync(page, { level: 1 }))).toBe(0);
  });

  it("'none' stores every page raw", () => {
    const input = samplePages();
    const out = allocBatch(4, PS);
    new PageCompressor('none', PS).compress(input, 4, out);
    expect([...out.flags.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    expect(out.length).toBe(4 * PS);
    expect(Buffer.compare(Buffer.from(out.data.subarray(0, 4 * PS)), input)).toBe(0);
  });
});

describe('PageDecompressor', () => {
  const dec = new PageDecompressor(PS);

  for (const codec of CODECS) {
    it(`${codec}: decodes what the library encodes, into place`, () => {
      const page = taggedPage(42, 0x3c);
      const stored =
        codec === 'zlib' ? deflateSync(page) : codec === 'lzo' ? lzo.compress(Buffer.from(page)) : codec === 'snappy' ? snappyCompress(page) : zstdCompress(page);
      const dst = new Uint8Array(3 * PS).fill(0xee);
      expect(dec.decompress(CODEC_FLAG[codec], stored, dst, PS)).toBeUndefined();
      expect(dst.subarray(PS, 2 * PS)).toEqual(page);
      // Neighbours untouched.
      expect(dst[PS - 1]).toBe(0xee);
      expect(dst[2 * PS]).toBe(0xee);
    });

    it(`${codec}: refuses data that inflates beyond the block size`, () => {
      const big = new Uint8Array(64 << 10); // a bomb: 64 KiB of zeros in less than a page
      const stored =
        codec === 'zlib' ? deflateSync(big) : codec === 'lzo' ? lzo.compress(Buffer.from(big)) : codec === 'snappy' ? snappyCompress(big) : zstdCompress(big);
      expect(stored.length).toBeLessThan(PS);
      const dst = new Uint8Array(PS);
      const problem = dec.decompress(CODEC_FLAG[codec], stored, dst, 0);
      expect(problem).toMatch(new RegExp(`${codec}.*(more than the block size|declares 65536)`));
    });

    it(`${codec}: refuses data that inflates to less than a page`, () => {
      const small = new Uint8Array(100).fill(1);
      const stored =
        codec === 'zlib' ? deflateSync(small) : codec === 'lzo' ? lzo.compress(Buffer.from(small)) : codec === 'snappy' ? snappyCompress(small) : zstdCompress(small);
      const problem = dec.decompress(CODEC_FLAG[codec], stored, new Uint8Array(PS), 0);
      expect(problem).toMatch(/100 bytes/);
    });

    it(`${codec}: reports damaged data`, () => {
      const page = taggedPage(1);
      const stored = Buffer.from(
        codec === 'zlib' ? deflateSync(page) : codec === 'lzo' ? lzo.compress(Buffer.from(page)) : codec === 'snappy' ? snappyCompress(page) : zstdCompress(page),
      );
      const cut = stored.subarray(0, Math.max(2, stored.length >> 1));
      const problem = dec.decompress(CODEC_FLAG[codec], cut, new Uint8Array(PS), 0);
      expect(problem).toBeDefined();
      expect(problem).toContain(codec);
    });
  }

  it('checks the snappy length preamble before decoding', () => {
    expect(snappyLength(Uint8Array.of(0x80, 0x20))).toBe(4096);
    expect(snappyLength(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x10))).toBe(2 ** 32);
    expect(snappyLength(Uint8Array.of(0x80, 0x80))).toBeUndefined();
    // A block declaring 4 GiB is refused without allocating it.
    expect(dec.decompress(4, Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x10, 0), new Uint8Array(PS), 0)).toMatch(/declares 4294967296/);
  });

  it('refuses raw pages of the wrong size and unknown flags', () => {
    expect(dec.decompress(0, new Uint8Array(PS - 1), new Uint8Array(PS), 0)).toMatch(/not the block size/);
    expect(dec.decompress(0x3, new Uint8Array(10), new Uint8Array(PS), 0)).toMatch(/0x3/);
  });
});

describe('CompressionPool', () => {
  const pools: CompressionPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  for (const codec of CODECS) {
    it(`${codec}: worker output is byte-identical to in-thread output`, async () => {
      const n = 64;
      const input = new Uint8Array(n * PS);
      for (let i = 0; i < n; i++) {
        if (i % 5 === 1) input.set(randomBytes(PS), i * PS);
        else if (i % 5 !== 2) input.set(taggedPage(i, i & 0xff), i * PS);
      }
      const local = new PageCompressor(codec, PS).compress(input, n, allocBatch(n, PS));
      const pool = CompressionPool.create(codec, PS, 2);
      pools.push(pool);
      const job = allocPoolJob(n, PS);
      job.input.set(input);
      const done = await pool.run(job, n);
      expect(done.batch.length).toBe(local.length);
      expect([...done.batch.sizes.subarray(0, n)]).toEqual([...local.sizes.subarray(0, n)]);
      expect([...done.batch.flags.subarray(0, n)]).toEqual([...local.flags.subarray(0, n)]);
      expect(Buffer.compare(Buffer.from(done.batch.data.subarray(0, local.length)), Buffer.from(local.data.subarray(0, local.length)))).toBe(0);
      // The input comes back intact for reuse.
      expect(Buffer.compare(Buffer.from(done.input), Buffer.from(input))).toBe(0);
    });
  }

  it('runs jobs concurrently on several workers and keeps them apart', async () => {
    const pool = CompressionPool.create('zlib', PS, 2);
    pools.push(pool);
    const jobs = [0, 1, 2, 3].map((k) => {
      const j = allocPoolJob(4, PS);
      for (let i = 0; i < 4; i++) j.input.set(taggedPage(k * 10 + i), i * PS);
      return j;
    });
    const results = await Promise.all(jobs.map((j) => pool.run(j, 4)));
    const dec = new PageDecompressor(PS);
    results.forEach((r, k) => {
      let at = 0;
      for (let i = 0; i < 4; i++) {
        const page = new Uint8Array(PS);
        expect(dec.decompress(r.batch.flags[i]!, r.batch.data.subarray(at, at + r.batch.sizes[i]!), page, 0)).toBeUndefined();
        expect(page).toEqual(taggedPage(k * 10 + i));
        at += r.batch.sizes[i]!;
      }
    });
  });

  it('rejects work after close', async () => {
    const pool = CompressionPool.create('lzo', PS, 1);
    await pool.close();
    await expect(pool.run(allocPoolJob(1, PS), 1)).rejects.toThrow(/closed/);
  });
});
