/**
 * Protection never beats a status rule. Synthetic guests whose kernel-text
 * mapping also covers ordinary pages (the tail past _end, freed init
 * sections: free, anonymous, cache, balloon and poisoned pages), with and
 * without a kexec-style kernel-text PT_LOAD over them: no offline,
 * hwpoison or (with an oracle) unbacked page is read, in any output format,
 * with --protect over all memory, and by analyze; the pages kept are those
 * the guest's truth says makedumpfile's rules keep, with protection
 * overriding the content rules only.
 */
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../src/core/rangeset.js';
import { CountingSource } from '../../src/io/source.js';
import { analyzeDump } from '../../src/pipeline/analyze.js';
import { validateDump } from '../../src/pipeline/validate.js';
import { buildGuest, GuestImageSource, type Guest } from '../../src/synth/index.js';
import type { PlanRun } from '../../src/synth/plan.js';
import type { Codec } from '../../src/formats/types.js';
import { expectedReason, makeGuest, tempDir } from '../helpers/guests.js';
import { inspectDump } from '../../src/pipeline/info.js';
import { bytesTouched, fileRangesOf, probeFilter, statusRuns, truthOracle } from '../helpers/probe.js';

const MiB = 1 << 20;

/** Guests whose image neighbourhood holds every kind of page (checked below). */
const GUESTS: Array<{ scenario: string; kernel: string; seed: number }> = [
  { scenario: 'virtio-balloon', kernel: '6.1', seed: 3 },
  { scenario: 'xen-hvm-balloon', kernel: '6.12', seed: 5 },
  { scenario: 'vmware-balloon', kernel: '6.6', seed: 11 },
  { scenario: 'plain', kernel: '5.10', seed: 2 },
  { scenario: 'virtio-balloon', kernel: '4.19', seed: 8 },
];

const guests = new Map<string, Guest>();
function guest(g: { scenario: string; kernel: string; seed: number }): Guest {
  const key = `${g.scenario}/${g.kernel}/${g.seed}`;
  let x = guests.get(key);
  if (!x) guests.set(key, (x = buildGuest({ scenario: g.scenario, kernel: g.kernel, seed: g.seed, size: 64 * MiB })));
  return x;
}

/** Pfns of the kernel-text mapping that are not the image: freed spans and the tail past _end. */
function neighbourRuns(g: Guest): PlanRun[] {
  const out: PlanRun[] = [];
  for (const [s, n] of g.layout.freedSpans) for (const r of g.plan.runs) if (r.start < s + n && s < r.start + r.count) out.push(r);
  return out;
}

type Format = { name: string; codec?: Codec; format?: 'kdump' | 'elf'; flattened?: boolean };
const FORMATS: Format[] = [
  { name: 'kdump', codec: 'none' },
  { name: 'kdump zlib', codec: 'zlib' },
  { name: 'kdump lzo', codec: 'lzo' },
  { name: 'kdump snappy', codec: 'snappy' },
  { name: 'kdump zstd', codec: 'zstd' },
  { name: 'ELF', format: 'elf' },
  { name: 'flattened', codec: 'none', flattened: true },
];

/**
 * Whether the output holds a pfn, from the truth: makedumpfile's rules,
 * status rules always, protection over the content rules only, the zero
 * rule in ELF (kdump keeps zero pages as one shared page).
 */
function expectedPresent(run: PlanRun, level: number, prot: boolean, oracle: boolean, elf: boolean): boolean | undefined {
  if (!run.load) return false;
  if (run.memmap === 'type-overlap') return undefined;
  const why = run.content === 'meta' ? 'kept' : expectedReason(run, level);
  if (why === 'offline' || why === 'hwpoison' || why === 'hole') return false;
  if (oracle && !run.ram) return false;
  switch (why) {
    case 'free':
      return false;
    case 'cache':
    case 'cache-private':
    case 'user':
      return prot;
    case 'zero':
      return elf ? prot : true;
    default:
      return true;
  }
}

function checkKept(g: Guest, present: Uint8Array, level: number, protect: RangeSet | undefined, oracle: boolean, elf: boolean): number {
  let checked = 0;
  for (const run of g.plan.runs) {
    for (let p = run.start; p < run.start + run.count && p < present.length; p++) {
      const want = expectedPresent(run, level, protect?.has(p) ?? false, oracle, elf);
      if (want === undefined) continue;
      if (!!present[p] !== want) {
        throw new Error(`${g.scenario} ${g.era.name} seed ${g.seed} -d ${level}: pfn 0x${p.toString(16)} (${run.cls}/${run.memmap}/${run.content}${run.owner ? `/${run.owner}` : ''}) present ${present[p]}, expected ${want}`);
      }
      checked++;
    }
  }
  return checked;
}

describe('synth places ordinary pages under the kernel-text mapping', () => {
  it('the guests here hold free, anon, cache, offline and hwpoison pages there, and some have a kernel-text PT_LOAD', () => {
    const seen = new Set<string>();
    let textLoads = 0;
    for (const spec of GUESTS) {
      const g = guest(spec);
      for (const r of neighbourRuns(g)) seen.add(r.memmap === 'thp' ? 'anon' : r.memmap);
      if (g.textLoad) textLoads++;
    }
    expect([...seen]).toEqual(expect.arrayContaining(['free', 'anon', 'cache', 'offline', 'hwpoison']));
    expect(textLoads).toBeGreaterThan(0);
    expect(textLoads).toBeLessThan(GUESTS.length);
  });
});

describe('no status page is read, whatever is protected', () => {
  for (const spec of GUESTS) {
    describe(`${spec.scenario} ${spec.kernel} seed ${spec.seed}`, () => {
      for (const f of FORMATS) {
        it(`${f.name}: -d 31 and -d 0, --protect over all memory, with the oracle`, async () => {
          const g = guest(spec);
          const all = RangeSet.single(0, g.maxPfn);
          const oracle = truthOracle(g);
          const status = fileRangesOf(g, statusRuns(g, true));
          expect(status.length).toBeGreaterThan(0);
          for (const level of [31, 0]) {
            const r = await probeFilter(g, { ...f, dumpLevel: level, protect: all, oracle });
            expect(bytesTouched(r.reads, status), `${f.name} -d ${level}`).toBe(0);
            // The report counts protected pages that status rules excluded all the same.
            expect(r.report.pages.protectedExcluded.offline ?? 0).toBe(r.report.pages.excluded.offline);
            if (!f.flattened) checkKept(g, r.present, level, all, true, f.format === 'elf');
          }
        });
      }
      it('analyze reads no status page either, with --protect over all memory', async () => {
        const g = guest(spec);
        const counter = new CountingSource(new GuestImageSource(g));
        await analyzeDump({ input: counter, protect: RangeSet.single(0, g.maxPfn), oracle: truthOracle(g), sample: 0 });
        expect(bytesTouched(counter.ranges, fileRangesOf(g, statusRuns(g, true)))).toBe(0);
      });
      it('validate reads no status page (content-not-ram off by default)', async () => {
        const g = guest(spec);
        const counter = new CountingSource(new GuestImageSource(g));
        const r = await validateDump({ input: counter, oracle: truthOracle(g) });
        expect(bytesTouched(counter.ranges, fileRangesOf(g, statusRuns(g, true)))).toBe(0);
        expect(r.checks.find((c) => c.id === 'content-not-ram')?.ran).toBe(false);
        // The kernel image proper has no page a status or content rule drops: no false alarm.
        expect(r.checks.find((c) => c.id === 'protected-excluded')).toMatchObject({ ran: true, count: 0 });
        expect(r.findings).toEqual([]);
      });
    });
  }
});

/** The truth's kernel image proper: reserved pages of the kernel-text mapping within [kbase, kbase + imagePages). */
function imageProper(g: Guest): RangeSet {
  return RangeSet.from(
    g.plan.runs
      .filter((x) => x.memmap === 'reserved' && x.start < g.layout.kbase + g.layout.imagePages && x.start + x.count > g.layout.kbase)
      .map((x) => ({ start: Math.max(x.start, g.layout.kbase), end: Math.min(x.start + x.count, g.layout.kbase + g.layout.imagePages) })),
  );
}

describe('info reports the kernel image proper, as filter protects it', () => {
  it('not the whole kernel-text mapping its neighbours share', async () => {
    const spec = GUESTS[0]!;
    const g = guest(spec);
    expect(neighbourRuns(g).length).toBeGreaterThan(0);
    const dir = await tempDir();
    try {
      const file = await makeGuest(dir, 'g.vmcore', { scenario: spec.scenario, kernel: spec.kernel, seed: spec.seed, size: 64 * MiB });
      const r = await inspectDump(file, { triage: false });
      expect(r.kernelImageMissing).toBeUndefined();
      expect(r.kernelImage).toEqual(imageProper(g).toJSON());
    } finally {
      await dir.remove();
    }
  });
});

describe('the kept set is the truth rule set; the kernel image is the image proper', () => {
  for (const spec of GUESTS) {
    it(`${spec.scenario} ${spec.kernel} seed ${spec.seed}: levels 0, 1, 31; kdump and ELF; no --protect`, async () => {
      const g = guest(spec);
      let checked = 0;
      for (const level of [0, 1, 31]) {
        for (const elf of [false, true]) {
          const r = await probeFilter(g, { dumpLevel: level, format: elf ? 'elf' : 'kdump' });
          // The kernel image found is the truth's image proper: reserved pages of the mapping.
          const image = RangeSet.from(
            g.plan.runs
              .filter((x) => x.memmap === 'reserved' && x.start < g.layout.kbase + g.layout.imagePages && x.start + x.count > g.layout.kbase)
              .map((x) => ({ start: Math.max(x.start, g.layout.kbase), end: Math.min(x.start + x.count, g.layout.kbase + g.layout.imagePages) })),
          );
          const ki = r.report.protection.kernelImage;
          expect(ki.found && ki.pages).toBe(image.size);
          // The kernel log's buffers are protected too (the truth's printk ranges).
          checked += checkKept(g, r.present, level, image.union(RangeSet.from(g.printk.truth.ranges)), false, elf);
        }
      }
      expect(checked).toBeGreaterThan(6 * 10000);
    });
  }
});
