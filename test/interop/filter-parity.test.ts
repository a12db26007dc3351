/**
 * dumpsieve filter against makedumpfile 1.7.2 on the same synthetic
 * images: the set of pfns kept (the 2nd bitmap) must be equal, level by
 * level. makedumpfile keeps zero pages in its 2nd bitmap and points them
 * at one shared zero page; dumpsieve does the same, so the bitmaps compare
 * directly. Where dumpsieve deliberately differs, the test says so:
 * - offline pages without the VMCOREINFO key (4.19 PG_balloon): dumpsieve
 *   finds them by the page-type bit and excludes them; makedumpfile keeps them;
 * - ELF output: dumpsieve excludes exactly; makedumpfile writes excluded
 *   runs shorter than 256 pages that are followed by kept pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { filterDump } from '../../src/pipeline/filter.js';
import { havePeers } from './peers.js';
import { makeGuest, presentPfns, readTruth, tempDir, type TempDir } from '../helpers/guests.js';

const ok = havePeers('filter parity with makedumpfile', 'makedumpfile');
const LEVELS = [0, 1, 2, 4, 8, 16, 31];

function makedumpfile(args: string[]): string {
  return execFileSync('makedumpfile', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function diffPfns(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  const n = Math.max(a.length, b.length);
  for (let p = 0; p < n; p++) if ((a[p] ?? 0) !== (b[p] ?? 0)) out.push(p);
  return out;
}

describe.runIf(ok)('kept pfns equal makedumpfile 1.7.2', () => {
  let dir: TempDir;
  const images: Record<string, string> = {};
  beforeAll(async () => {
    dir = await tempDir('dumpsieve-parity-');
    images['sparsemem-vmemmap'] = await makeGuest(dir, 'sparse.vmcore', { scenario: 'plain', size: 128 << 20, seed: 11, kernel: '5.10' });
    images.flatmem = await makeGuest(dir, 'flat.vmcore', { scenario: 'plain', size: 128 << 20, seed: 12, kernel: '5.10', memoryModel: 'flatmem' });
    images['phys_base 0x200000'] = await makeGuest(dir, 'pb.vmcore', { scenario: 'plain', size: 128 << 20, seed: 13, kernel: '5.10', physBase: 0x200000 });
    images['xen-hvm-balloon'] = await makeGuest(dir, 'xen.vmcore', { scenario: 'xen-hvm-balloon', size: 128 << 20, seed: 14, kernel: '5.10' });
  }, 120_000);
  afterAll(() => dir?.remove());

  for (const name of ['sparsemem-vmemmap', 'flatmem', 'phys_base 0x200000', 'xen-hvm-balloon']) {
    it(`${name}: -d ${LEVELS.join(', ')}`, async () => {
      const img = images[name]!;
      for (const level of LEVELS) {
        const mdf = dir.file(`${name.replace(/\W/g, '_')}-${level}.mdf`);
        const ds = dir.file(`${name.replace(/\W/g, '_')}-${level}.ds`);
        makedumpfile(['-d', String(level), img, mdf]);
        await filterDump({ input: img, output: ds, dumpLevel: level });
        const d = diffPfns(await presentPfns(mdf), await presentPfns(ds));
        expect(d.slice(0, 10), `-d ${level}: pfns that differ`).toEqual([]);
      }
    }, 120_000);
  }

  it('ELF output: dumpsieve keeps exactly the kdump set; makedumpfile -E keeps a superset (short excluded runs)', async () => {
    const img = images['xen-hvm-balloon']!;
    const kd = dir.file('elfcmp.kdump');
    const ds = dir.file('elfcmp.ds.elf');
    const mdf = dir.file('elfcmp.mdf.elf');
    await filterDump({ input: img, output: kd, dumpLevel: 31 });
    await filterDump({ input: img, output: ds, dumpLevel: 31, format: 'elf' });
    makedumpfile(['-E', '-d', '31', img, mdf]);
    const kept = await presentPfns(kd);
    const inDs = await presentPfns(ds);
    const inMdf = await presentPfns(mdf);
    const zeroRedirected = (p: number): boolean => kept[p] === 1 && inDs[p] !== 1;
    let extra = 0;
    for (let p = 0; p < kept.length; p++) {
      // dumpsieve ELF = kept pages minus zero pages (which ELF drops at -d 1).
      if ((inDs[p] ?? 0) === 1) expect(kept[p], `pfn 0x${p.toString(16)}`).toBe(1);
      if ((inMdf[p] ?? 0) === 1 && kept[p] !== 1) extra++;
      if ((inDs[p] ?? 0) === 1) expect(inMdf[p], `makedumpfile lacks pfn 0x${p.toString(16)}`).toBe(1);
      void zeroRedirected;
    }
    expect(extra, 'excluded pages makedumpfile -E still writes').toBeGreaterThan(0);
  }, 120_000);

  it('4.19 (PG_balloon, no offline key): the only difference is the balloon pages dumpsieve finds by fallback', async () => {
    const img = await makeGuest(dir, 'vb419.vmcore', { scenario: 'virtio-balloon', size: 128 << 20, seed: 15, kernel: '4.19' });
    const { runs } = await readTruth(`${img}.truth`);
    const balloon = new Set<number>();
    for (const r of runs) if (r.load && r.memmap === 'offline') for (let p = r.start; p < r.start + r.count; p++) balloon.add(p);
    expect(balloon.size).toBeGreaterThan(1000);
    for (const level of [0, 31]) {
      const mdf = dir.file(`vb419-${level}.mdf`);
      const ds = dir.file(`vb419-${level}.ds`);
      makedumpfile(['-d', String(level), img, mdf]);
      const report = await filterDump({ input: img, output: ds, dumpLevel: level });
      expect(report.pages.offlineByFallback).toBe(balloon.size);
      const d = diffPfns(await presentPfns(mdf), await presentPfns(ds));
      expect(d.length).toBe(balloon.size);
      for (const p of d) expect(balloon.has(p)).toBe(true);
    }
  }, 120_000);
});
