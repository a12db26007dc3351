/**
 * Mutation fuzzing of the kernel log reader: corrupt bytes of the log's own
 * pages (ring header, descriptors, infos, text ring; log_buf and its
 * indices) in a valid image and require a result (records plus warnings)
 * or a one-line DumpError — never another exception, never a hang, never
 * more records than the buffer could hold. Seeded, so a failure reproduces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from './rng.js';
import { readFile } from 'node:fs/promises';
import { DumpError } from '../../src/core/errors.js';
import { BufferSource } from '../../src/io/source.js';
import { openDumpSource } from '../../src/formats/registry.js';
import { readKernelLogOf } from '../../src/pipeline/dmesg.js';
import { makeGuest, readTruth, tempDir, type TempDir } from '../helpers/guests.js';
import { readPhdrs } from '../synth/helpers.js';

/** More with DUMPSIEVE_FUZZ_ITERATIONS=N (seeds stay reproducible). */
const ITERATIONS = Number(process.env.DUMPSIEVE_FUZZ_ITERATIONS ?? 250);

let dir: TempDir;
const images: Record<string, { bytes: Buffer; hot: Array<[number, number]>; bufferBytes: number }> = {};

beforeAll(async () => {
  dir = await tempDir('dumpsieve-fuzz-printk-');
  for (const [name, kernel, seed] of [
    ['lockless', '6.1', 5],
    ['log_buf', '4.19', 2],
  ] as const) {
    const img = await makeGuest(dir, `${name}.vmcore`, { scenario: 'plain', size: 32 << 20, seed, kernel });
    const p = (await readTruth(`${img}.truth`)).header.printk!;
    const { phdrs } = await readPhdrs(img);
    // File offsets of the log's pages (the truth's printk ranges).
    const hot: Array<[number, number]> = [];
    for (const r of p.ranges) {
      for (let pfn = r.start; pfn < r.end; pfn++) {
        const pa = pfn * 4096;
        const l = phdrs.find((x) => x.type === 1 && pa >= x.paddr && pa < x.paddr + x.filesz)!;
        hot.push([l.offset + (pa - l.paddr), l.offset + (pa - l.paddr) + 4096]);
      }
    }
    images[name] = { bytes: await readFile(img), hot, bufferBytes: p.bufferBytes };
  }
}, 60_000);
afterAll(() => dir?.remove());


describe.each(['lockless', 'log_buf'])('mutated %s log', (name) => {
  it('reads what it can with warnings, or fails with one DumpError line', async () => {
    const { bytes, hot, bufferBytes } = images[name]!;
    let warned = 0;
    let failed = 0;
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const seed = 0x10900000 + iter + (name === 'lockless' ? 0 : 5000);
      const r = rng(seed);
      // Mutate in place and put the bytes back afterwards (the image is 32 MiB).
      const saved: Array<[number, number]> = [];
      const n = 1 + Math.floor(r() * 12);
      for (let k = 0; k < n; k++) {
        // The first hot page holds the printk variables (ring header, log_buf
        // indices) in its first 0x240 bytes: hit them more often.
        const vars = r() < 0.4;
        const h = vars ? hot[0]! : hot[Math.floor(r() * hot.length)]!;
        const at = h[0] + Math.floor(r() * (vars ? 0x240 : h[1] - h[0]));
        const len = r() < 0.7 ? 1 : 1 + Math.floor(r() * 16);
        for (let i = at; i < Math.min(h[1], at + len); i++) {
          saved.push([i, bytes[i]!]);
          bytes[i] = r() < 0.3 ? 0 : r() < 0.5 ? 0xff : Math.floor(r() * 256);
        }
      }
      const t0 = performance.now();
      try {
        const reader = await openDumpSource(new BufferSource(bytes, 'fuzz'));
        try {
          const log = await readKernelLogOf(reader);
          if (log.warnings.length) warned++;
          // Never more records than headers (log_buf) or blocks (lockless) fit in the buffer.
          expect(log.records.length, `seed 0x${seed.toString(16)}`).toBeLessThanOrEqual(bufferBytes / 16 + 1);
          for (const w of log.warnings) expect(w.includes('\n'), `seed 0x${seed.toString(16)}: ${w}`).toBe(false);
        } finally {
          await reader.close();
        }
      } catch (err) {
        if (!(err instanceof DumpError)) throw new Error(`seed 0x${seed.toString(16)}: ${(err as Error)?.stack ?? String(err)}`);
        expect(err.message.split('\n').length, `seed 0x${seed.toString(16)}`).toBe(1);
        failed++;
      } finally {
        for (let i = saved.length - 1; i >= 0; i--) bytes[saved[i]![0]] = saved[i]![1];
      }
      expect(performance.now() - t0, `seed 0x${seed.toString(16)} took too long`).toBeLessThan(5000);
    }
    // The mutations do reach the checks.
    // (most mutations only change text or times, which no check can tell from the real thing).
    expect(warned + failed).toBeGreaterThan(ITERATIONS / 25);
  }, 300_000);
});
