/**
 * dumpsieve against makedumpfile 1.7.2 on real guests (a copy of QEMU's
 * ELF with the program headers where makedumpfile looks for them).
 *
 * - Offline pages: both count exactly the guest's own KPF_OFFLINE pages.
 * - Kept set at -d 31 (and -d 0, 1 on one guest): equal on 5.10 and 6.1,
 *   except kernel-image pages dumpsieve protects (README: "Kernel-image
 *   pages are never excluded, whatever their flags"), which must lie inside
 *   the kernel image the guest reports in /proc/iomem.
 * - 6.12, which makedumpfile 1.7.2 predates: every difference is named by
 *   the page's type, read from the dump by libkdumpfile (not by dumpsieve).
 * - analyze's class counts equal makedumpfile's report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterDump, type FilterReport } from '../../src/pipeline/filter.js';
import { analyzeDump } from '../../src/pipeline/analyze.js';
import { havePeers } from '../interop/peers.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import {
  CI_GUESTS,
  count,
  hexPfn,
  kernelMapping,
  loadGuest,
  loadMap,
  makedumpfile,
  minus,
  nameDifferences,
  normalizedCopy,
  offlineMap,
  presentMap,
  segmentsOf,
  type Guest,
  type MakedumpfileReport,
} from './real.js';

const ok = havePeers('real guests against makedumpfile', 'makedumpfile', 'libkdumpfile');

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-real-mdf-');
});
afterAll(() => dir?.remove());

interface Pair {
  g: Guest;
  /** dumpsieve's output (kdump, lzo). */
  dsOut: string;
  mdf: MakedumpfileReport;
  ds: FilterReport;
  /** Pfns each output holds. */
  inMdf: Uint8Array;
  inDs: Uint8Array;
}

async function runBoth(g: Guest, norm: string, level: number): Promise<Pair> {
  const mdfOut = dir.file(`${g.name}-${level}.mdf`);
  const dsOut = dir.file(`${g.name}-${level}.ds`);
  const mdf = makedumpfile(['-l', '-d', String(level), norm, mdfOut]);
  const ds = await filterDump({ input: g.elf, output: dsOut, dumpLevel: level, codec: 'lzo' });
  // Compare over dumpsieve's pfn range: makedumpfile's max_mapnr ends at the last memmap section.
  const n = ds.input.maxPfn;
  return { g, dsOut, mdf, ds, inMdf: await presentMap(mdfOut, n), inDs: await presentMap(dsOut, n) };
}

function sum(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

function inKernelText(g: Guest, pfn: number): boolean {
  const m = kernelMapping(g.truth);
  return pfn >= m.start && pfn < m.end;
}

/**
 * Pages dumpsieve keeps and makedumpfile drops because dumpsieve protects
 * the kernel image: all inside the kernel-text mapping (from the guest's
 * /proc/iomem and /proc/kallsyms), and as many as the report's protected
 * count.
 */
function expectOnlyProtected(p: Pair, onlyDs: number[]): void {
  const outside = onlyDs.filter((q) => !inKernelText(p.g, q));
  expect(outside.slice(0, 5).map(hexPfn), 'kept by dumpsieve only, outside the kernel-text mapping').toEqual([]);
  expect(onlyDs.length, 'kept by dumpsieve only = its protected-range count').toBe(sum(p.ds.pages.protectedKept));
}

describe.runIf(ok).each(CI_GUESTS.map((n) => [n]))('%s', (name) => {
  let g: Guest;
  let norm: string;
  let d31: Pair;
  beforeAll(async () => {
    g = loadGuest(name);
    norm = normalizedCopy(g.elf, dir.file(`${name}.elf`));
    d31 = await runBoth(g, norm, 31);
  });
  afterAll(async () => {
    const { rm } = await import('node:fs/promises');
    await rm(norm, { force: true });
  });

  it("-d 31: both count the guest's own offline pages", async () => {
    const segs = await segmentsOf(g.elf);
    const off = offlineMap(g.truth);
    const loaded = loadMap(segs, off.length);
    const inDump = count(off.map((v, p) => v & loaded[p]!));
    expect(d31.mdf.offline).toBe(inDump);
    expect(d31.ds.pages.excluded.offline).toBe(inDump);
  });

  if (!name.startsWith('6.12')) {
    it('-d 31: the kept set equals makedumpfile 1.7.2\'s, but for protected kernel-image pages', () => {
      const onlyMdf = minus(d31.inMdf, d31.inDs);
      const onlyDs = minus(d31.inDs, d31.inMdf);
      expect(onlyMdf.slice(0, 5).map(hexPfn), `kept by makedumpfile only (${onlyMdf.length})`).toEqual([]);
      expectOnlyProtected(d31, onlyDs);
      expect(d31.ds.pages.kept + (d31.ds.pages.excluded.zero ?? 0)).toBe(count(d31.inDs));
    });
  } else {
    it('-d 31: every difference from makedumpfile 1.7.2 is named by the page type it does not know', () => {
      const onlyMdf = minus(d31.inMdf, d31.inDs);
      const onlyDs = minus(d31.inDs, d31.inMdf);
      const named = nameDifferences(g.elf, onlyMdf, onlyDs);
      const protectedPfns = named.unnamedDs.filter((q) => inKernelText(g, q));
      expect(named.unnamedMdf.slice(0, 5).map(hexPfn), 'kept by makedumpfile only, unexplained').toEqual([]);
      expect(named.unnamedDs.length - protectedPfns.length, `kept by dumpsieve only, unexplained: ${named.unnamedDs.slice(0, 5).map(hexPfn)}`).toBe(0);
      expect(protectedPfns.length).toBe(sum(d31.ds.pages.protectedKept));
      // The guest does hold anonymous THPs, and makedumpfile keeps their tails.
      expect(named.thpTails).toBeGreaterThan(0);
      console.log(
        `${name}: makedumpfile 1.7.2 keeps ${named.thpTails} anonymous THP tail pages (no OFFSET(page.compound_order) in 6.12), ` +
          `drops ${named.slabAnon} slab pages as user data (no NUMBER(PG_slab) in 6.12); dumpsieve protects ${protectedPfns.length} kernel-image pages`,
      );
    });
  }

  it("makedumpfile re-filters dumpsieve's output (phys_base, max_mapnr and VMCOREINFO from its header) to its own decisions", async () => {
    const out = dir.file(`${name}.refiltered`);
    makedumpfile(['-l', '-d', '31', d31.dsOut, out]);
    const re = await presentMap(out, d31.inDs.length);
    const want = d31.inMdf.map((v, p) => v & d31.inDs[p]!);
    expect(minus(re, want).slice(0, 5).map(hexPfn), 'kept by the re-filter only').toEqual([]);
    expect(minus(want, re).slice(0, 5).map(hexPfn), 'dropped by the re-filter only').toEqual([]);
  });

  it('analyze: class counts equal makedumpfile\'s report', async () => {
    const a = await analyzeDump({ input: g.elf, sample: 2048 });
    expect(a.classes.offline.pages).toBe(d31.mdf.offline);
    expect(a.classes.hwpoison.pages).toBe(d31.mdf.hwpoison);
    if (!name.startsWith('6.12')) {
      // makedumpfile's counts are before protection; analyze's classes too.
      expect(a.classes.free.pages).toBe(d31.mdf.free);
      expect(a.classes.cache.pages).toBe(d31.mdf.cache);
      expect(a.classes['cache-private'].pages).toBe(d31.mdf.cachePrivate);
      expect(a.classes.user.pages).toBe(d31.mdf.user);
    }
  });

  if (name === '6.1-balloon-l5') {
    for (const level of [0, 1]) {
      it(`-d ${level}: the kept set equals makedumpfile 1.7.2's (offline pages go at every level)`, async () => {
        const p = await runBoth(g, norm, level);
        expect(p.mdf.offline).toBe(d31.mdf.offline);
        expect(p.ds.pages.excluded.offline).toBe(d31.mdf.offline);
        expect(minus(p.inMdf, p.inDs).slice(0, 5).map(hexPfn)).toEqual([]);
        expectOnlyProtected(p, minus(p.inDs, p.inMdf));
      });
    }
  }
});
