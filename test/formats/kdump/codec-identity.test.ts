/**
 * Output bytes pinned: the committed sample guests filtered with every
 * codec, on the main thread and through the worker pool, and large pages
 * (64 KiB: arm64 and ppc64 kernels) through the page compressor, hash to
 * the SHA-256 that the native codec add-ons (lzo 0.4.11 = minilzo 2.09,
 * snappy 7.4.3 = the Rust snap crate, zstd-napi 0.0.13 = zstd 1.5.7)
 * produced before the codecs were reimplemented in JavaScript and
 * WebAssembly. A change of codec implementation, of the writer or of the
 * pipeline that alters a single output byte fails here.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { brotliDecompressSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterDump } from '../../../src/pipeline/filter.js';
import { PageCompressor, allocBatch } from '../../../src/formats/kdump/codecs/index.js';
import type { Codec } from '../../../src/formats/types.js';
import { tempDir, type TempDir } from '../../helpers/guests.js';
import { PINNED, PINNED_FLAT_ZSTD } from './pinned-output.js';

const sample = (name: string): string => fileURLToPath(new URL(`../../../samples/${name}.vmcore.br`, import.meta.url));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** SHA-256 over sizes, flags and stored bytes of the plain sample's first 128 pages of 64 KiB, per codec. */
const PINNED_64K: Record<Exclude<Codec, 'none'>, string> = {
  zlib: 'b6eed9e508215cd6c6888fcca9967af5f5cd3d6ef564aa1db8f7b16c84c4cab9',
  lzo: 'f5531d156631f61ada734c5a7b325dedb6b9da3296ad28cc9e4c095c7457fb20',
  snappy: 'f7065c91573836cdccc395064f2a26aa53621734327d2a702c68299910697592',
  zstd: 'a8efc28c155879bf2334b729995eeab6f113c034f83490f367a190dcfed46dda',
};

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-identity-');
});
afterAll(() => dir?.remove());

describe('filter output is byte-identical to the pinned native-codec output', () => {
  for (const [name, level, codec, want, size] of PINNED) {
    for (const threads of [0, 2]) {
      it(`${name} -d ${level} ${codec}, ${threads === 0 ? 'main thread' : `${threads} workers`}`, async () => {
        const out = dir.file(`${name}-${level}-${codec}-${threads}.kdump`);
        await filterDump({ input: sample(name), output: out, dumpLevel: level, codec, threads });
        const bytes = await readFile(out);
        expect(bytes.length).toBe(size);
        expect(sha256(bytes)).toBe(want);
      });
    }
  }

  it('flattened zstd stream', async () => {
    const out = dir.file('plain.flat');
    const s = createWriteStream(out);
    await filterDump({ input: sample('plain'), flattened: true, stdout: s, dumpLevel: 31, codec: 'zstd' });
    await new Promise<void>((resolve) => s.end(resolve));
    expect(sha256(await readFile(out))).toBe(PINNED_FLAT_ZSTD);
  });
});

/**
 * 4 KiB pages shaped to reach every encoder path: literal runs of every
 * length class (short, over 18, over 255 + 18, over 60 and 256 for snappy),
 * matches near and far (LZO M2/M3/M4 offsets, snappy copy-1/copy-2),
 * long matches, zero tails and incompressible pages. A seeded generator:
 * the same pages on every run.
 */
function shapedPages(n: number, ps: number): Uint8Array {
  let x = 0x2545f491;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const out = new Uint8Array(n * ps);
  for (let p = 0; p < n; p++) {
    const page = out.subarray(p * ps, (p + 1) * ps);
    const kind = p % 8;
    let i = 0;
    while (i < ps) {
      const r = rnd();
      const len = Math.min(ps - i, kind === 0 ? ps : 1 + (r % [1, 8, 40, 300, 1200, 64, 20, 3000][kind]!));
      const mode = kind === 0 ? 0 : (r >>> 12) % 4;
      for (let k = 0; k < len; k++) {
        if (mode === 0) page[i + k] = rnd() & 0xff;
        else if (mode === 1 && i > 0) page[i + k] = page[i + k - 1 - ((r >>> 20) % Math.min(i, kind === 7 ? 49000 : 2100))]!;
        else if (mode === 2) page[i + k] = 0;
        else page[i + k] = (k * 7 + (r & 0xff)) & 0xff;
      }
      i += len;
    }
  }
  return out;
}

/** SHA-256 over sizes, flags and stored bytes of 256 shaped 4 KiB pages, per codec. */
const PINNED_SHAPED: Record<Exclude<Codec, 'none'>, string> = {
  zlib: '60c0b38678a574eb32c84abf5708ea2c7e093300a81391abf08225b7a4a0cae2',
  lzo: 'd76d8446806a01a7bc85418450303ff79be087e97d1235653207125075c7ebf0',
  snappy: '99f690382c76d8ff2ed08d9b0465292727296300ae36b1e4494491690a731109',
  zstd: 'b908345fbef63f0d2e59f6de29bd40f6f58f8667a17bbf316094b9e6a93b6d2a',
};

/** The same for 32 shaped 64 KiB pages (LZO M4 offsets, its 48 KiB blocks; snappy's 16 KiB hash table). */
const PINNED_SHAPED_64K: Record<Exclude<Codec, 'none'>, string> = {
  zlib: 'b113c62c4d08fa8e3c48f800e3d6a41295248b33ff1c32f90401b8565d6bc8c5',
  lzo: 'fc1ec1ecedfb5a691d7efe6af49ba44d8161d00ed6463b79a6c65be40bdc4201',
  snappy: 'd0292ac307d36b5b1b762be250eb7c289e38d9dcab771c1bb4feda57145c5d47',
  zstd: 'f3460796ca48b62eb3bc2b198cfa3735b8a7b968d0e64b8ffb8f329f8d6625f5',
};

async function batchHash(codec: Exclude<Codec, 'none'>, pages: Uint8Array, n: number, ps: number): Promise<string> {
  const out = (await PageCompressor.create(codec, ps)).compress(pages, n, allocBatch(n, ps));
  const h = createHash('sha256');
  h.update(new Uint8Array(out.sizes.buffer, 0, n * 4));
  h.update(new Uint8Array(out.flags.buffer, 0, n * 4));
  h.update(out.data.subarray(0, out.length));
  return h.digest('hex');
}

describe('shaped 4 KiB pages through the page compressor', () => {
  for (const codec of Object.keys(PINNED_SHAPED) as Array<Exclude<Codec, 'none'>>) {
    it(codec, async () => {
      expect(await batchHash(codec, shapedPages(256, 4096), 256, 4096)).toBe(PINNED_SHAPED[codec]);
    });
    it(`${codec}, 64 KiB pages`, async () => {
      expect(await batchHash(codec, shapedPages(32, 65536), 32, 65536)).toBe(PINNED_SHAPED_64K[codec]);
    });
  }
});

describe('64 KiB pages through the page compressor', () => {
  for (const codec of Object.keys(PINNED_64K) as Array<Exclude<Codec, 'none'>>) {
    it(codec, async () => {
      const ps = 65536;
      const n = 128;
      const image = brotliDecompressSync(await readFile(sample('plain')));
      expect(await batchHash(codec, image.subarray(0, n * ps), n, ps)).toBe(PINNED_64K[codec]);
    });
  }
});
