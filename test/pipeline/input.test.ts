import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { openInput } from '../../src/pipeline/input.js';
import { errorOf } from '../helpers/errors.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';

let dir: TempDir;
let image: string;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-input-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'plain', size: 32 << 20, seed: 3, kernel: '5.10' });
});
afterAll(() => dir.remove());

async function pages(path: string): Promise<{ name: string; maxPfn: number; sample: Buffer }> {
  const r = await openInput(path);
  try {
    const b = Buffer.alloc(16 * 4096);
    await r.readPages(0x1000, 16, b);
    return { name: r.info.file, maxPfn: r.info.maxPfn, sample: b };
  } finally {
    await r.close();
  }
}

describe('compressed inputs', () => {
  it('.gz (by magic) and .br (by name) read like the image, and leave no temporary file behind', async () => {
    const raw = await readFile(image);
    await writeFile(dir.file('copy.gz'), gzipSync(raw));
    await writeFile(dir.file('copy.br'), brotliCompressSync(raw));
    const before = (await readdir(tmpdir())).filter((f) => f.startsWith('dumpsieve-spill-')).length;
    const a = await pages(image);
    const g = await pages(dir.file('copy.gz'));
    const b = await pages(dir.file('copy.br'));
    expect(g.maxPfn).toBe(a.maxPfn);
    expect(g.sample.equals(a.sample)).toBe(true);
    expect(b.sample.equals(a.sample)).toBe(true);
    expect(g.name).toBe(dir.file('copy.gz'));
    expect((await readdir(tmpdir())).filter((f) => f.startsWith('dumpsieve-spill-')).length).toBe(before);
  }, 240_000); // compresses and inflates a 64 MiB image twice: slow on a loaded machine

  it('damaged compressed data is one DUMP_CORRUPT error naming the file', async () => {
    const raw = await readFile(image);
    const gz = gzipSync(raw.subarray(0, 1 << 20));
    gz.fill(0x55, 200, 400);
    await writeFile(dir.file('bad.gz'), gz);
    const e = await errorOf(openInput(dir.file('bad.gz')));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.message).toMatch(new RegExp(`^${dir.file('bad.gz')}: gzip data is damaged`));
    await writeFile(dir.file('bad.br'), Buffer.from('definitely not brotli data, just text'));
    const b = await errorOf(openInput(dir.file('bad.br')));
    expect(b.code).toBe('DUMP_CORRUPT');
    expect(b.message).toMatch(/brotli data is damaged/);
  });
});
