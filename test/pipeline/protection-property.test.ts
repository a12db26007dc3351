/**
 * Property: on random small guests (scenario, kernel era, memory model,
 * phys_base, layout seed), at a random dump level and output format, with
 * random protected ranges and with or without a RAM oracle,
 *   - no offline, hwpoison or (with the oracle) unbacked page is read;
 *   - the output holds exactly the pages the truth's rules keep.
 * DUMPSIEVE_PROPERTY_CASES sets the number of cases (default 200); a
 * failing case prints its parameters, which reproduce it.
 */
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../src/core/rangeset.js';
import { UsageError } from '../../src/core/errors.js';
import { buildGuest, type Guest } from '../../src/synth/index.js';
import { Rng } from '../../src/synth/rng.js';
import type { PlanRun } from '../../src/synth/plan.js';
import { expectedReason } from '../helpers/guests.js';
import { bytesTouched, fileRangesOf, probeFilter, statusRuns, truthOracle } from '../helpers/probe.js';

const CASES = Number(process.env.DUMPSIEVE_PROPERTY_CASES ?? 200);
const SCENARIOS = ['plain', 'virtio-balloon', 'vmware-balloon', 'xen-hvm-balloon', 'xen-pv-balloon', 'hv-balloon', 'virtio-mem'];
const KERNELS = ['4.19', '5.10', '5.10-nohugetlb', '6.1', '6.6', '6.11', '6.12'];
const FORMATS = [{ codec: 'none' as const }, { codec: 'lzo' as const }, { format: 'elf' as const }];

interface Case {
  scenario: string;
  kernel: string;
  memoryModel: 'sparsemem' | 'flatmem';
  physBase: number;
  seed: number;
  size: number;
  level: number;
  format: number;
  protect: 'none' | 'all' | 'random';
  oracle: boolean;
}

/** Draw a case whose guest can be built (unsupported combinations are drawn again). */
function drawCase(rng: Rng): { c: Case; g: Guest } {
  for (;;) {
    const scenario = SCENARIOS[rng.int(0, SCENARIOS.length - 1)]!;
    const c: Case = {
      scenario,
      kernel: KERNELS[rng.int(0, KERNELS.length - 1)]!,
      memoryModel: rng.chance(0.2) ? 'flatmem' : 'sparsemem',
      physBase: rng.int(0, 32) * 2 * 1024 * 1024,
      seed: rng.int(0, 0xffff_ffff),
      size: (scenario === 'xen-pv-balloon' ? 64 : 32) * 1024 * 1024,
      level: rng.int(0, 31),
      format: rng.int(0, FORMATS.length - 1),
      protect: (['none', 'all', 'random'] as const)[rng.int(0, 2)]!,
      oracle: rng.chance(0.5),
    };
    try {
      return { c, g: buildGuest(c) };
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
    }
  }
}

function expectedPresent(run: PlanRun, level: number, prot: boolean, oracle: boolean, elf: boolean): boolean | undefined {
  if (!run.load) return false;
  if (run.memmap === 'type-overlap') return undefined;
  const why = run.content === 'meta' ? 'kept' : expectedReason(run, level);
  if (why === 'offline' || why === 'hwpoison' || why === 'hole') return false;
  if (oracle && !run.ram) return false;
  if (why === 'free') return false;
  if (why === 'cache' || why === 'cache-private' || why === 'user') return prot;
  if (why === 'zero') return elf ? prot : true;
  return true;
}

describe(`property: status beats protection (${CASES} random guests)`, () => {
  it('never reads a status page; keeps exactly the rule set', async () => {
    const rng = new Rng(0x9e0_7ec7, 1);
    let statusPages = 0;
    let checkedPages = 0;
    for (let k = 0; k < CASES; k++) {
      const { c, g } = drawCase(rng);
      const where = `case ${k}: ${JSON.stringify(c)}`;
      let protect: RangeSet | undefined;
      if (c.protect === 'all') protect = RangeSet.single(0, g.maxPfn);
      else if (c.protect === 'random') {
        const ranges = Array.from({ length: rng.int(1, 4) }, () => {
          const s = rng.int(0, g.maxPfn - 1);
          return { start: s, end: Math.min(g.maxPfn, s + rng.int(1, 4096)) };
        });
        protect = RangeSet.from(ranges);
      }
      const elf = FORMATS[c.format]!.format === 'elf';
      const r = await probeFilter(g, { ...FORMATS[c.format]!, dumpLevel: c.level, protect, oracle: c.oracle ? truthOracle(g) : undefined });
      const status = statusRuns(g, c.oracle);
      statusPages += status.reduce((a, [s, e]) => a + e - s, 0);
      expect(bytesTouched(r.reads, fileRangesOf(g, status)), where).toBe(0);
      // The kernel image the filter protects is the guest's image proper.
      const image = RangeSet.from(
        g.plan.runs
          .filter((x) => x.memmap === 'reserved' && x.start < g.layout.kbase + g.layout.imagePages && x.start + x.count > g.layout.kbase)
          .map((x) => ({ start: Math.max(x.start, g.layout.kbase), end: Math.min(x.start + x.count, g.layout.kbase + g.layout.imagePages) })),
      );
      // The kernel log's buffers are protected too (the truth's printk ranges).
      const fixed = image.union(RangeSet.from(g.printk.truth.ranges));
      const prot = protect ? protect.union(fixed) : fixed;
      for (const run of g.plan.runs) {
        if (!run.load) {
          // Holes (up to 128 GiB of them in Xen PV guests): checked at once.
          const at = r.present.subarray(run.start, run.start + run.count).indexOf(1);
          if (at >= 0) expect.fail(`${where}: pfn 0x${(run.start + at).toString(16)} is not in the image but present in the output`);
          continue;
        }
        for (let p = run.start; p < run.start + run.count && p < r.present.length; p++) {
          const want = expectedPresent(run, c.level, prot.has(p), c.oracle, elf);
          if (want === undefined) continue;
          if (!!r.present[p] !== want) expect.fail(`${where}: pfn 0x${p.toString(16)} (${run.cls}/${run.memmap}/${run.content}) present ${r.present[p]}, expected ${want}`);
          checkedPages++;
        }
      }
    }
    expect(statusPages).toBeGreaterThan(CASES * 100);
    expect(checkedPages).toBeGreaterThan(CASES * 5000);
  }, 600_000);
});
