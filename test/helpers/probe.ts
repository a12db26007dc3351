/**
 * Running the pipelines on synthetic guests rendered in memory, with a
 * counting source: which file bytes were read, and which pfns an output
 * holds. The expectations come from the guest's plan (its truth), never
 * from the code under test.
 */
import { PassThrough } from 'node:stream';
import { BufferSource, CountingSource } from '../../src/io/source.js';
import { openDumpSource } from '../../src/formats/registry.js';
import { PfnState } from '../../src/formats/types.js';
import { filterDump, type FilterOptions, type FilterReport } from '../../src/pipeline/filter.js';
import { GuestImageSource, imageLayout, type Guest } from '../../src/synth/index.js';
import type { PlanRun } from '../../src/synth/plan.js';
import { RangesModel } from '../../src/ram/models.js';
import type { RamOracle } from '../../src/ram/oracle.js';
import { MemorySink } from '../formats/kdump/memory-sink.js';

const PAGE = 4096;

/** Sorted, disjoint file byte ranges. */
export type ByteRanges = Array<[number, number]>;

/** The file ranges holding pfns [start, end) in the guest's image (every PT_LOAD that covers them). */
export function fileRangesOf(g: Guest, runs: ReadonlyArray<[number, number]>): ByteRanges {
  const { segments, offsets } = imageLayout(g);
  const out: ByteRanges = [];
  for (const [s, e] of runs) {
    segments.forEach((seg, i) => {
      const a = Math.max(s, seg.start);
      const b = Math.min(e, seg.end);
      if (a < b) out.push([offsets[i]! + (a - seg.start) * PAGE, offsets[i]! + (b - seg.start) * PAGE]);
    });
  }
  return out.sort((x, y) => x[0] - y[0]);
}

/** Bytes of `ranges` that `reads` touched (0 when none). */
export function bytesTouched(reads: ReadonlyArray<[number, number]>, ranges: ByteRanges): number {
  const sorted = [...reads].sort((x, y) => x[0] - y[0]);
  let n = 0;
  let j = 0;
  for (const [s, e] of ranges) {
    while (j < sorted.length && sorted[j]![1] <= s) j++;
    for (let k = j; k < sorted.length && sorted[k]![0] < e; k++) n += Math.min(e, sorted[k]![1]) - Math.max(s, sorted[k]![0]);
  }
  return n;
}

/** Runs of the plan whose pfns match `pred`, as [start, end). */
export function planRuns(g: Guest, pred: (r: PlanRun) => boolean): Array<[number, number]> {
  return g.plan.runs.filter(pred).map((r) => [r.start, r.start + r.count] as [number, number]);
}

/** The hypervisor's view of the guest as a RAM oracle (a ranges model of its backed pfns). */
export function truthOracle(g: Guest): RamOracle {
  return new RangesModel('truth', planRuns(g, (r) => r.ram).map(([start, end]) => ({ start, end })));
}

/** Status pages by the guest's own struct pages (offline, hwpoison), and with an oracle the unbacked ones. */
export function statusRuns(g: Guest, withOracle: boolean): Array<[number, number]> {
  return planRuns(g, (r) => r.load && (r.memmap === 'offline' || r.memmap === 'hwpoison' || (withOracle && !r.ram)));
}

export interface ProbeResult {
  report: FilterReport;
  /** Byte ranges read from the image. */
  reads: Array<[number, number]>;
  /** Per pfn: 1 where the output holds the page. */
  present: Uint8Array;
}

/** Filter a guest rendered in memory into memory (kdump or ELF), or as a flattened stream (pfns not reported). */
export async function probeFilter(g: Guest, opts: Omit<FilterOptions, 'input' | 'output' | 'sink'>): Promise<ProbeResult> {
  const counter = new CountingSource(new GuestImageSource(g));
  const sink = opts.flattened ? undefined : new MemorySink('memory');
  const stdout = new PassThrough();
  stdout.resume();
  const report = await filterDump({ ...opts, input: counter, sink, stdout });
  const present = new Uint8Array(report.input.maxPfn);
  if (sink) {
    const r = await openDumpSource(new BufferSource(sink.bytes, 'output'));
    try {
      const st = new Uint8Array(32768);
      for (let w = 0; w < r.info.maxPfn && w < present.length; w += st.length) {
        const n = Math.min(st.length, r.info.maxPfn - w, present.length - w);
        await r.pfnStates(w, n, st);
        for (let i = 0; i < n; i++) present[w + i] = st[i] === PfnState.PRESENT ? 1 : 0;
      }
    } finally {
      await r.close();
    }
  }
  return { report, reads: counter.ranges, present };
}
