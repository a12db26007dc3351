/**
 * Filtered dumps keep what the log needs: the log read from dumpsieve's
 * -d 31 output equals the log of the input, in every output format, with
 * the ring's never-written (all-zero) pages kept although the zero rule
 * would drop them in ELF output. Also compressed inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { filterDump, type FilterOptions } from '../../src/pipeline/filter.js';
import { kernelLogPfns, readKernelLog } from '../../src/pipeline/dmesg.js';
import { openDump } from '../../src/formats/registry.js';
import { makeGuest, presentPfns, readTruth, tempDir, type TempDir, type TruthRun } from '../helpers/guests.js';
import type { PrintkTruth } from '../../src/synth/printk.js';

let dir: TempDir;
let img: string;
let truth: PrintkTruth;
let runs: TruthRun[];
let inputLog: Awaited<ReturnType<typeof readKernelLog>>;

beforeAll(async () => {
  dir = await tempDir('dumpsieve-dmesg-');
  // Seed 25: buffers memblock-allocated in the direct map, a 128 KiB ring partly written.
  img = await makeGuest(dir, 'g.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 25, kernel: '6.1' });
  const t = await readTruth(`${img}.truth`);
  truth = t.header.printk!;
  runs = t.runs;
  inputLog = await readKernelLog(img);
});
afterAll(() => dir?.remove());

/** Pfns of the log's structures that the truth says are all zero. */
function zeroRingPfns(): number[] {
  const out: number[] = [];
  for (const r of runs) {
    if (r.content !== 'zero' || !r.owner?.startsWith('printk')) continue;
    for (let p = r.start; p < r.start + r.count; p++) out.push(p);
  }
  return out;
}

describe('the log survives filtering at -d 31', () => {
  it('the image is the case that needs protection: dynamic buffers with never-written pages', () => {
    expect(truth.placement).toBe('dynamic');
    expect(inputLog.records.length).toBe(truth.records.length);
    expect(zeroRingPfns().length).toBeGreaterThan(5);
  });

  it('the log pfn ranges cover every page the truth marks as the log', async () => {
    const r = await openDump(img);
    try {
      const got = await kernelLogPfns(r);
      const has = (p: number): boolean => got.some((x) => p >= x.start && p < x.end);
      for (const range of truth.ranges) for (let p = range.start; p < range.end; p++) expect(has(p), `pfn 0x${p.toString(16)}`).toBe(true);
    } finally {
      await r.close();
    }
  });

  const formats: Array<[string, Partial<FilterOptions>]> = [
    ['kdump', { codec: 'none' }],
    ['kdump zlib', { codec: 'zlib' }],
    ['kdump lzo', { codec: 'lzo' }],
    ['kdump snappy', { codec: 'snappy' }],
    ['kdump zstd', { codec: 'zstd' }],
    ['ELF', { format: 'elf' }],
    ['flattened', { flattened: true, codec: 'zlib' }],
  ];
  for (const [name, opts] of formats) {
    it(name, async () => {
      const out = dir.file(`out-${name.replace(' ', '-')}`);
      if (opts.flattened) {
        const stream = createWriteStream(out);
        await filterDump({ input: img, dumpLevel: 31, stdout: stream, ...opts });
        await new Promise<void>((resolve) => stream.end(resolve));
      } else {
        await filterDump({ input: img, output: out, dumpLevel: 31, ...opts });
      }
      const log = await readKernelLog(out);
      expect(log.warnings).toEqual([]);
      expect(log.missingBytes).toBe(0);
      expect(log.records).toEqual(inputLog.records);
      expect([log.lost, log.inFlight, log.format]).toEqual([inputLog.lost, inputLog.inFlight, inputLog.format]);
      // The zero rule kept the ring's empty pages (ELF would otherwise leave them out).
      const present = await presentPfns(out);
      for (const p of zeroRingPfns()) expect(present[p], `pfn 0x${p.toString(16)}`).toBe(1);
    });
  }

  it('ELF output still drops zero pages outside the protected ranges (the protection is what kept the ring)', async () => {
    const out = dir.file('out-ELF');
    const present = await presentPfns(out);
    const dropped = runs.filter((r) => r.content === 'zero' && r.load && r.memmap !== 'offline' && !r.owner).some((r) => present[r.start] !== 1);
    expect(dropped).toBe(true);
  });
});

describe('compressed inputs', () => {
  it('a gzip copy gives the same log', async () => {
    const gz = dir.file('g.vmcore.gz');
    await writeFile(gz, gzipSync(await readFile(img), { level: 1 }));
    const log = await readKernelLog(gz);
    expect(log.records).toEqual(inputLog.records);
  });
});
