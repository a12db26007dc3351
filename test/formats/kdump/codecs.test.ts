/**
 * The page codecs on their own: batch compression (raw fallback, the zlib
 * stream makedumpfile writes), bounded decompression (bombs, short and
 * damaged streams), the worker pool, and the codec table's flags. Decoding
 * by the reference libraries (liblzo2, libsnappy, libzstd) and LZO output
 * byte-identical to liblzo2's is checked in test/interop/codec-peers.test.ts;
 * output identical to the former native add-ons in codec-identity.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PAGE_CODECS,
  PageCompressor,
  PageDecompressor,
  allocBatch,
  codecFlag,
  codecOfFlags,
  loadCodec,
  snappyLength,
  type PageCodecName,
} from '../../../src/formats/kdump/codecs/index.js';
import { CompressionPool, allocPoolJob } from '../../../src/formats/kdump/codecs/pool.js';
import { zlibPageCompressor } from '../../../src/formats/kdump/codecs/zlib.js';
import { checkedOnFirstPage } from '../../../src/formats/kdump/codecs/checked.js';
import { lzoWasmCompressor } from '../../../src/formats/kdump/codecs/lzo-wasm.js';
import { Lzo1xCompressor, lzoBound } from '../../../src/formats/kdump/codecs/lzo.js';
import { taggedPage } from '../../builders/elf-builder.js';

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

/** `data` compressed whole by a codec's page compressor (any length: a "page" of data.length bytes). */
async function encode(codec: PageCodecName, data: Uint8Array): Promise<Uint8Array> {
  return Uint8Array.from((await loadCodec(codec)).compressor(data.length)(data));
}

/** Round trip through the codec's own decoder, for a page of data.length bytes. */
async function decode(codec: PageCodecName, stored: Uint8Array, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const r = (await loadCodec(codec)).decompressor(length)(stored, out, 0);
  if (r !== length) throw new Error(`${codec}: ${r}`);
  return out;
}

describe('codec table', () => {
  it("maps page_desc flags to codecs (diskdump_mod.h's DUMP_DH_COMPRESSED_*) and rejects combinations", () => {
    expect(Object.fromEntries(PAGE_CODECS.map((c) => [c.macro, c.flag]))).toEqual({
      DUMP_DH_COMPRESSED_ZLIB: 0x1,
      DUMP_DH_COMPRESSED_LZO: 0x2,
      DUMP_DH_COMPRESSED_SNAPPY: 0x4,
      DUMP_DH_COMPRESSED_ZSTD: 0x20,
    });
    expect(PAGE_CODECS.map((c) => [c.letter, c.name])).toEqual([
      ['c', 'zlib'],
      ['l', 'lzo'],
      ['p', 'snappy'],
      ['z', 'zstd'],
    ]);
    expect(codecFlag('none')).toBe(0);
    expect(codecOfFlags(0x20)).toBe('zstd');
    expect(codecOfFlags(0)).toBe('none');
    expect(codecOfFlags(0x3)).toBeUndefined();
    expect(codecOfFlags(0x8)).toBeUndefined();
  });
});

describe('PageCompressor', () => {
  for (const codec of CODECS) {
    it(`${codec}: stores shrinking pages compressed and the random page raw`, async () => {
      const input = samplePages();
      const out = allocBatch(4, PS);
      (await PageCompressor.create(codec, PS)).compress(input, 4, out);
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
          expect(out.flags[i]).toBe(codecFlag(codec));
          expect(size).toBeLessThan(PS);
          expect(await decode(codec, stored, PS)).toEqual(page);
        } else {
          expect(Buffer.compare(Buffer.from(stored), page)).toBe(0);
        }
        at += size;
      }
      expect(out.length).toBe(at);
    });
  }

  it('zlib output is an RFC 1950 stream at level 1 (makedumpfile Z_BEST_SPEED)', async () => {
    const page = taggedPage(3);
    const out = allocBatch(1, PS);
    (await PageCompressor.create('zlib', PS)).compress(page, 1, out);
    const stored = out.data.subarray(0, out.sizes[0]);
    expect(stored[0]).toBe(0x78);
    expect(((stored[0]! << 8) | stored[1]!) % 31).toBe(0);
    expect(Buffer.compare(Buffer.from(stored), deflateSync(page, { level: 1 }))).toBe(0);
  });

  it('zlib: one reused deflate state gives the bytes of a fresh one, page after page, in any order of kinds', () => {
    // The compressor keeps its state across pages (reset between them): a
    // reset that kept history or settings would change later pages.
    const kinds = samplePages();
    const one = zlibPageCompressor(PS, 1);
    const seed = randomBytes(600);
    for (let i = 0; i < 600; i++) {
      const k = seed[i]! % 5;
      const page = k < 4 ? kinds.subarray(k * PS, (k + 1) * PS) : taggedPage(i);
      const got = Buffer.from(one(page));
      expect(got.equals(deflateSync(page, { level: 1 })), `page ${i} (kind ${k})`).toBe(true);
    }
    // Another level, another page size: the settings are the compressor's own.
    const big = new Uint8Array(16384).fill(0x41);
    big.set(randomBytes(5000), 3000);
    const nine = zlibPageCompressor(16384, 9);
    for (let i = 0; i < 3; i++) expect(Buffer.from(nine(big)).equals(deflateSync(big, { level: 9 }))).toBe(true);
  });

  it("lzo: the WebAssembly compressor writes the JavaScript one's bytes, page after page, at 4, 16 and 64 KiB pages", () => {
    // The JavaScript compressor is held to liblzo2 in test/interop/codec-peers.test.ts.
    const seed = randomBytes(3000);
    for (const ps of [4096, 16384, 65536]) {
      const wasm = lzoWasmCompressor(ps);
      expect(wasm, 'node has WebAssembly: -l must not fall back to JavaScript').toBeDefined();
      const c = new Lzo1xCompressor();
      const out = new Uint8Array(lzoBound(ps));
      const rounds = ps === 4096 ? 1500 : ps === 16384 ? 60 : 300;
      for (let i = 0; i < rounds; i++) {
        // Mixed content: repeats at every distance class (M2, M3, M4), literal runs of every length, random tails.
        const page = new Uint8Array(ps);
        const k = seed[i]! % 7;
        if (k === 0) page.set(randomBytes(ps));
        else if (k === 6) {
          // Short repeats at the distances where M2, M3 and M4 part (2 KiB, 16 KiB) and elsewhere.
          page.set(randomBytes(ps));
          const r = randomBytes(400);
          const dists = [1, 2047, 2048, 2049, 16383, 16384, 16385, 3 + r[0]!];
          for (let m = 0; m < 100; m++) {
            const dist = dists[r[2 * m]! % dists.length]!;
            const len = 3 + (r[2 * m + 1]! % 12); // 3..14: both sides of M2 (8), M4 (9) short lengths
            const dst = dist + ((r[m + 200]! * 997 + m * 131) % Math.max(1, ps - dist - len));
            if (dst + len <= ps) page.copyWithin(dst, dst - dist, dst - dist + len);
          }
        }
        else if (k === 1) page.fill(seed[i + 1]!);
        else if (k === 2) for (let j = 0; j < ps; j++) page[j] = (j * (seed[i + 2]! | 1)) >> (seed[i + 3]! % 8);
        else if (k === 3) page.set(taggedPage(i).subarray(0, Math.min(4096, ps)));
        else {
          const unit = randomBytes(1 + (seed[i + 4]! % (k === 4 ? 40 : 3000)));
          for (let j = 0; j < ps; j += unit.length) page.set(unit.subarray(0, Math.min(unit.length, ps - j)), j);
          page.set(randomBytes(seed[i + 5]! % 200), seed[i + 6]! * 8 % (ps - 200));
        }
        const n = c.compress(page, ps, out);
        expect(Buffer.from(wasm!(page)).equals(Buffer.from(out.subarray(0, n))), `page size ${ps}, page ${i} (kind ${k})`).toBe(true);
      }
    }
    // Inputs too short for a match: all literals, whose first run is coded apart up to 238 bytes.
    const small = lzoWasmCompressor(300)!;
    const c = new Lzo1xCompressor();
    const out = new Uint8Array(lzoBound(300));
    for (let len = 0; len <= 300; len++) {
      const input = randomBytes(len);
      const n = c.compress(input, len, out);
      expect(Buffer.from(small(input)).equals(Buffer.from(out.subarray(0, n))), `${len} bytes`).toBe(true);
    }
  });

  it('a faster implementation is used only if its first page equals the reference', () => {
    const calls = { fast: 0, ref: 0 };
    const ref = (p: Uint8Array): Uint8Array => (calls.ref++, p.subarray(0, 8));
    const agreeing = checkedOnFirstPage((p) => (calls.fast++, p.subarray(0, 8)), ref);
    const page = randomBytes(64);
    for (let i = 0; i < 5; i++) expect(Buffer.from(agreeing(page)).equals(page.subarray(0, 8))).toBe(true);
    expect(calls).toEqual({ fast: 5, ref: 1 });
    calls.fast = calls.ref = 0;
    const differing = checkedOnFirstPage((p) => (calls.fast++, p.subarray(1, 9)), ref);
    for (let i = 0; i < 5; i++) expect(Buffer.from(differing(page)).equals(page.subarray(0, 8))).toBe(true);
    expect(calls).toEqual({ fast: 1, ref: 5 });
  });

  it("'none' stores every page raw", async () => {
    const input = samplePages();
    const out = allocBatch(4, PS);
    (await PageCompressor.create('none', PS)).compress(input, 4, out);
    expect([...out.flags.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    expect(out.length).toBe(4 * PS);
    expect(Buffer.compare(Buffer.from(out.data.subarray(0, 4 * PS)), input)).toBe(0);
  });
});

describe('PageDecompressor', () => {
  const dec = new PageDecompressor(PS);

  it('loads codecs on demand', async () => {
    const d = new PageDecompressor(PS);
    expect(d.ready(0)).toBe(true);
    expect(d.ready(0x20)).toBe(false);
    expect(() => d.decompress(0x20, new Uint8Array(10), new Uint8Array(PS), 0)).toThrow(/before prepare/);
    await d.prepare(0x1 | 0x20);
    expect(d.ready(0x20)).toBe(true);
    expect(d.ready(0x1)).toBe(true);
    expect(d.ready(0x2)).toBe(false);
    await dec.prepare(0x1 | 0x2 | 0x4 | 0x20);
  });

  for (const codec of CODECS) {
    it(`${codec}: decodes into place`, async () => {
      const page = taggedPage(42, 0x3c);
      const stored = codec === 'zlib' ? deflateSync(page) : await encode(codec, page);
      const dst = new Uint8Array(3 * PS).fill(0xee);
      expect(dec.decompress(codecFlag(codec), stored, dst, PS)).toBeUndefined();
      expect(dst.subarray(PS, 2 * PS)).toEqual(page);
      // Neighbours untouched.
      expect(dst[PS - 1]).toBe(0xee);
      expect(dst[2 * PS]).toBe(0xee);
    });

    it(`${codec}: refuses data that inflates beyond the block size`, async () => {
      const big = new Uint8Array(64 << 10); // a bomb: 64 KiB of zeros in less than a page
      const stored = await encode(codec, big);
      expect(stored.length).toBeLessThan(PS);
      expect(await decode(codec, stored, big.length)).toEqual(big);
      const dst = new Uint8Array(PS + 16).fill(0xee);
      const problem = dec.decompress(codecFlag(codec), stored, dst, 0);
      expect(problem).toMatch(new RegExp(`${codec}.*(more than the block size|declares 65536)`));
      // Nothing written past the page.
      expect([...dst.subarray(PS)]).toEqual(new Array(16).fill(0xee));
    });

    it(`${codec}: refuses data that inflates to less than a page`, async () => {
      const small = new Uint8Array(100).fill(1);
      const stored = await encode(codec, small);
      const problem = dec.decompress(codecFlag(codec), stored, new Uint8Array(PS), 0);
      expect(problem).toMatch(/100 bytes/);
    });

    it(`${codec}: reports damaged data`, async () => {
      const page = taggedPage(1);
      const stored = await encode(codec, page);
      const cut = stored.subarray(0, Math.max(2, stored.length >> 1));
      const problem = dec.decompress(codecFlag(codec), cut, new Uint8Array(PS), 0);
      expect(problem).toBeDefined();
      expect(problem).toContain(codec);
    });
  }

  for (const codec of CODECS) {
    it(`${codec}: mutated streams are refused or decoded, never written past the page`, async () => {
      const page = new Uint8Array(PS);
      for (let i = 0; i < PS; i++) page[i] = i % 97 < 40 ? 0 : (i * 31) & 0xff;
      const stored = await encode(codec, page);
      let x = 12345;
      const rnd = (n: number): number => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return x % n;
      };
      for (let k = 0; k < 300; k++) {
        const m = Uint8Array.from(stored);
        for (let j = 0, flips = 1 + rnd(4); j < flips; j++) m[rnd(m.length)] = rnd(256);
        const cut = rnd(5) === 0 ? m.subarray(0, rnd(m.length) + 1) : m;
        const dst = new Uint8Array(3 * PS).fill(0xa5);
        const problem = dec.decompress(codecFlag(codec), cut, dst, PS);
        expect(problem === undefined || problem.startsWith(`${codec} data `), String(problem)).toBe(true);
        expect(dst.subarray(0, PS).every((b) => b === 0xa5)).toBe(true);
        expect(dst.subarray(2 * PS).every((b) => b === 0xa5)).toBe(true);
      }
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
      const local = (await PageCompressor.create(codec, PS)).compress(input, n, allocBatch(n, PS));
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

  it('a job given to a closed pool is rejected, and the rejection waits for its caller (no unhandled rejection first)', async () => {
    const pool = CompressionPool.create('zlib', PS, 1);
    await pool.close();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const job = pool.run(allocPoolJob(1, PS), 1);
      // The writer awaits a job only when its turn comes: let the event loop turn first.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
      await expect(job).rejects.toThrow(/closed/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

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
    await dec.prepare(codecFlag('zlib'));
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
