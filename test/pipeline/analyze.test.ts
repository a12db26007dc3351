import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { analyzeDump, type AnalyzeReport } from '../../src/pipeline/analyze.js';
import { filterDump } from '../../src/pipeline/filter.js';
import { oracleFromSpec } from '../../src/ram/chain.js';
import { renderMemoryMapSvg } from '../../src/report/svg.js';
import { makeGuest, readTruth, tempDir, type TempDir, type TruthRun } from '../helpers/guests.js';
import type { Codec } from '../../src/formats/types.js';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-analyze-');
});
afterAll(() => dir.remove());

const SCENARIOS: Array<{ scenario: string; kernel: string; oracle: string }> = [
  { scenario: 'xen-hvm-balloon', kernel: '6.1', oracle: 'xen-hvm:.memtypes' },
  { scenario: 'xen-pv-balloon', kernel: '5.10', oracle: 'xen-pv:.p2m' },
  { scenario: 'virtio-balloon', kernel: '4.19', oracle: 'ranges:.backed' },
  { scenario: 'virtio-balloon', kernel: '6.12', oracle: 'ranges:.backed' },
  { scenario: 'hv-balloon', kernel: '6.6', oracle: 'ranges:.backed' },
  { scenario: 'virtio-mem', kernel: '6.11', oracle: 'virtio-mem:.virtio-mem' },
  { scenario: 'vmware-balloon', kernel: '5.10-nohugetlb', oracle: 'ranges:.backed' },
  { scenario: 'plain', kernel: '5.10', oracle: 'ranges:.backed' },
];

/** The analysis class a truth run must get (level-30 view, with the oracle's backing). */
function expectedClass(r: TruthRun, fallbackEra: boolean): string | undefined {
  if (!r.load) return 'hole';
  switch (r.memmap) {
    case 'free':
      return 'free';
    case 'cache':
      return 'cache';
    case 'cache-private':
      return 'cache-private';
    case 'anon':
    case 'thp':
    case 'hugetlb':
      return 'user';
    case 'hwpoison':
      return 'hwpoison';
    case 'offline':
      return fallbackEra ? 'offline-fallback' : 'offline';
    case 'type-overlap':
    case 'device':
      return undefined;
    default:
      return r.ram ? 'kernel' : 'not-ram';
  }
}

describe.each(SCENARIOS)('analyze $scenario ($kernel)', ({ scenario, kernel, oracle }) => {
  let image: string;
  let spec: string;
  let report: AnalyzeReport;
  let runs: TruthRun[];
  beforeAll(async () => {
    image = await makeGuest(dir, `${scenario}-${kernel}.vmcore`, { scenario, size: 64 << 20, seed: 31, kernel });
    const [kind, suffix] = oracle.split(':');
    spec = `${kind}:${image}${suffix}`;
    runs = (await readTruth(`${image}.truth`)).runs;
    report = await analyzeDump({ input: image, oracle: await oracleFromSpec(spec), sample: 0 });
  });

  it('the oracle answers equal the truth manifest backing for every RAM pfn', async () => {
    const o = await oracleFromSpec(spec);
    let checked = 0;
    for (const r of runs) {
      if (!r.load) continue;
      for (let p = r.start; p < r.start + r.count; ) {
        const s = o.span(p, r.start + r.count);
        expect(s.ram, `pfn 0x${p.toString(16)} (${r.cls}, ${r.owner ?? ''})`).toBe(r.ram);
        checked += s.count;
        p += s.count;
      }
    }
    expect(checked).toBeGreaterThan(10000);
  });

  it('class counts equal the truth manifest', () => {
    const fallback = kernel === '4.19' || kernel === '5.10-nohugetlb';
    const want: Record<string, number> = {};
    let unknown = 0;
    for (const r of runs) {
      if (r.start >= report.input.maxPfn) continue;
      const n = Math.min(r.count, report.input.maxPfn - r.start);
      const c = expectedClass(r, fallback);
      if (c === undefined) unknown += n;
      else want[c] = (want[c] ?? 0) + n;
    }
    for (const [c, n] of Object.entries(want)) {
      if (c === 'hole') continue;
      expect(report.classes[c as keyof AnalyzeReport['classes']].pages, c).toBe(n);
    }
    expect(unknown).toBe(0);
  });

  it('predicted sizes are within 5 % of the real output, for -d 0, 1, 31 and every codec', async () => {
    for (const level of [0, 1, 31]) {
      const p = report.predictions[level]!;
      for (const codec of ['none', 'zlib', 'lzo', 'snappy', 'zstd'] as Codec[]) {
        const out = dir.file(`pred-${scenario}-${kernel}-${level}-${codec}`);
        const f = await filterDump({ input: image, output: out, dumpLevel: level, codec, oracle: await oracleFromSpec(spec) });
        const real = (await stat(out)).size;
        expect(Math.abs(p.kdump[codec].bytes - real) / real, `-d ${level} ${codec}: predicted ${p.kdump[codec].bytes}, real ${real}`).toBeLessThan(0.05);
        expect(p.keptPages).toBe(f.pages.kept + (f.pages.excluded.zero ?? 0));
      }
      const elf = dir.file(`pred-${scenario}-${kernel}-${level}-elf`);
      await filterDump({ input: image, output: elf, dumpLevel: level, format: 'elf', oracle: await oracleFromSpec(spec) });
      const real = (await stat(elf)).size;
      expect(Math.abs(p.elf.bytes - real) / real, `-d ${level} ELF`).toBeLessThan(0.05);
      // Without zero pages to estimate, the ELF size is exact: its header room comes from the kept runs alone.
      if ((level & 1) === 0) expect(p.elf).toEqual({ bytes: real, error: 0 });
    }
  }, 120_000);
});

describe('sampling', () => {
  it('the default sample of a 256 MiB guest predicts compressed sizes within 5 %, inside twice its stated 95 % error', async () => {
    const image = await makeGuest(dir, 'sample.vmcore', { scenario: 'xen-hvm-balloon', size: 256 << 20, seed: 41, kernel: '6.1' });
    const r = await analyzeDump({ input: image });
    expect(r.sample.pages).toBeGreaterThan(12000);
    expect(r.sample.pages).toBeLessThan(24000);
    for (const codec of ['zlib', 'lzo', 'snappy', 'zstd'] as Codec[]) {
      const out = dir.file(`sample-${codec}`);
      await filterDump({ input: image, output: out, dumpLevel: 31, codec });
      const real = (await stat(out)).size;
      const p = r.predictions[31]!.kdump[codec];
      expect(Math.abs(p.bytes - real) / real).toBeLessThan(0.05);
      expect(p.error).toBeGreaterThan(0);
      expect(Math.abs(p.bytes - real)).toBeLessThan(2 * p.error);
    }
  }, 120_000);
});

describe('cost of reading a ballooned Xen HVM guest', () => {
  it('plain copy and oracle-only ask about every RAM pfn; flags + oracle asks nothing for offline pages', async () => {
    const image = await makeGuest(dir, 'cost.vmcore', { scenario: 'xen-hvm-balloon', size: 128 << 20, seed: 51, kernel: '6.1' });
    const { runs } = await readTruth(`${image}.truth`);
    const ram = runs.filter((r) => r.load).reduce((s, r) => s + r.count, 0);
    const offline = runs.filter((r) => r.load && r.memmap === 'offline').reduce((s, r) => s + r.count, 0);
    const r = await analyzeDump({ input: image, oracle: await oracleFromSpec(`xen-hvm:${image}.memtypes`), sample: 256, costLevel: 31 });
    const by = Object.fromEntries(r.cost.strategies.map((s) => [s.name, s]));
    expect(by['plain copy + callback']!.calls).toBe(ram);
    expect(by['oracle only']!.calls).toBe(ram);
    const flagsOracle = by['flags + oracle']!;
    expect(offline).toBeGreaterThan(5000);
    expect(flagsOracle.calls).toBeLessThanOrEqual(ram - offline);
    expect(by['plain copy']!.unbackedRead).toBeGreaterThanOrEqual(offline);
    expect(flagsOracle.unbackedRead).toBe(0);
    // The filter asks exactly those questions, and they are all for pages the flags keep.
    const f = await filterDump({ input: image, output: dir.file('cost.kdump'), dumpLevel: 31, oracle: await oracleFromSpec(`xen-hvm:${image}.memtypes`) });
    expect(f.oracle!.calls).toBe(flagsOracle.calls);
    expect(f.oracle!.calls).toBe(f.pages.kept + (f.pages.excluded.zero ?? 0) + (f.pages.excluded['not-ram'] ?? 0));
    expect(f.pages.offlineAlsoNotRam).toBe(offline);
    // The filter's own cost table agrees with analyze's prediction, strategy by strategy.
    const fby = Object.fromEntries(f.cost.strategies.map((s) => [s.name, s]));
    for (const name of Object.keys(by)) {
      expect(fby[name]!.calls, name).toBe(by[name]!.calls);
      expect(fby[name]!.pagesRead, name).toBe(by[name]!.pagesRead);
      expect(fby[name]!.unbackedRead, name).toBe(by[name]!.unbackedRead);
    }
  }, 120_000);
});

describe('memory map SVG', () => {
  it('is well-formed SVG with one legend entry per class present', async () => {
    const image = await makeGuest(dir, 'svg.vmcore', { scenario: 'virtio-mem', size: 64 << 20, seed: 61, kernel: '6.12' });
    const r = await analyzeDump({ input: image, oracle: await oracleFromSpec(`virtio-mem:${image}.virtio-mem`), sample: 128 });
    const svg = renderMemoryMapSvg(r);
    const path = dir.file('map.svg');
    await writeFile(path, svg);
    const py = spawnSync(
      '/usr/bin/python3',
      ['-c', 'import sys, xml.etree.ElementTree as E; t=E.parse(sys.argv[1]).getroot(); ns="{http://www.w3.org/2000/svg}"; print(t.tag, len(t.findall(f".//{ns}rect")), len([g for g in t.iter(ns+"g") if g.get("id")=="legend"][0].findall(ns+"text")))', path],
      { encoding: 'utf8' },
    );
    expect(py.status, py.stderr).toBe(0);
    const [tag, rects, legend] = py.stdout.trim().split(' ');
    expect(tag).toBe('{http://www.w3.org/2000/svg}svg');
    expect(Number(rects)).toBeGreaterThan(20);
    const present = Object.values(r.classes).filter((c) => c.pages > 0).length;
    expect(Number(legend)).toBe(present);
    expect(svg).toMatch(/offline \(PG_offline\): [\d,]+ pages/);
  });
});
