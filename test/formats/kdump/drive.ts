/**
 * Drives a DumpWriter the way the filter pipeline does (plan, bitmap
 * windows in order, kept pages in chunks with a zero mask) from a small
 * declarative description, so writer tests need no reader or classifier.
 */
import type { DumpWriter, OutputPlan, Utsname, WriteSummary } from '../../../src/formats/types.js';
import { VmcoreInfo } from '../../../src/formats/vmcoreinfo.js';
import { taggedPage } from '../../builders/elf-builder.js';

export const TEST_VMCOREINFO =
  'OSRELEASE=6.1.0-dumpsieve-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\nNUMBER(pgtable_l5_enabled)=0\n';

export interface DriveSpec {
  pageSize?: number;
  maxPfn: number;
  /** RAM ranges [start, end) (1st bitmap). */
  ram: Array<[number, number]>;
  /** Kept ranges (2nd bitmap), within RAM. */
  kept: Array<[number, number]>;
  /** Kept pfns whose content is all zero (zero-masked when dumpLevel has bit 1). */
  zero?: (pfn: number) => boolean;
  /** Page content of a kept, non-zero pfn (default: taggedPage). */
  content?: (pfn: number) => Uint8Array;
  dumpLevel?: number;
  notes?: Uint8Array;
  vmcoreinfo?: string | undefined;
  cpus?: number;
  utsname?: Partial<Utsname>;
  timestamp?: number;
  physBase?: number;
  window?: number;
  chunk?: number;
}

const inRanges = (rs: Array<[number, number]>, p: number): boolean => rs.some(([a, b]) => p >= a && p < b);

/** The bytes the dump holds for `pfn` (zeros for zero pages). */
export function pageContent(spec: DriveSpec, pfn: number): Uint8Array {
  const ps = spec.pageSize ?? 4096;
  if (spec.zero?.(pfn)) return new Uint8Array(ps);
  return spec.content ? spec.content(pfn) : taggedPage(pfn, 0xa5, ps);
}

export function planFor(spec: DriveSpec): OutputPlan {
  let kept = 0;
  let runs = 0;
  let last = -2;
  const zeroOut = ((spec.dumpLevel ?? 0) & 1) !== 0;
  for (const [a, b] of spec.kept) {
    for (let p = a; p < b; p++) {
      kept++;
      if (zeroOut && spec.zero?.(p)) continue;
      if (p !== last + 1) runs++;
      last = p;
    }
  }
  return {
    pageSize: spec.pageSize ?? 4096,
    maxPfn: spec.maxPfn,
    keptPages: kept,
    keptRuns: runs,
    dumpLevel: spec.dumpLevel ?? 0,
    notes: spec.notes ?? new Uint8Array(0),
    vmcoreinfo: spec.vmcoreinfo === undefined ? undefined : VmcoreInfo.parse(spec.vmcoreinfo),
    cpus: spec.cpus ?? 1,
    utsname: { sysname: 'Linux', nodename: 'drive', release: '6.1.0-dumpsieve-test', version: '#1 SMP', machine: 'x86_64', domainname: '', ...spec.utsname },
    timestamp: spec.timestamp ?? 1_700_000_000,
    physBase: spec.physBase ?? 0,
    pageOffset: 0xffff888000000000n,
  };
}

export async function driveWriter(writer: DumpWriter, spec: DriveSpec): Promise<WriteSummary> {
  const plan = planFor(spec);
  const ps = plan.pageSize;
  const W = spec.window ?? 32768;
  const CH = spec.chunk ?? 256;
  const zeroOut = (plan.dumpLevel & 1) !== 0;
  await writer.begin(plan);
  const data = new Uint8Array(CH * ps);
  const mask = new Uint8Array(CH);
  for (let w = 0; w < spec.maxPfn; w += W) {
    const n = Math.min(W, spec.maxPfn - w);
    const ram = new Uint8Array(Math.ceil(n / 8));
    const dumped = new Uint8Array(Math.ceil(n / 8));
    for (let i = 0; i < n; i++) {
      if (inRanges(spec.ram, w + i)) ram[i >> 3]! |= 1 << (i & 7);
      if (inRanges(spec.kept, w + i)) dumped[i >> 3]! |= 1 << (i & 7);
    }
    await writer.bitmaps({ start: w, count: n, ram, dumped });
    for (let i = 0; i < n; ) {
      if (!inRanges(spec.kept, w + i)) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n && inRanges(spec.kept, w + j)) j++;
      for (let k = i; k < j; k += CH) {
        const m = Math.min(CH, j - k);
        for (let q = 0; q < m; q++) {
          const pfn = w + k + q;
          data.set(pageContent(spec, pfn), q * ps);
          mask[q] = zeroOut && spec.zero?.(pfn) ? 1 : 0;
        }
        // Scribble over the chunk after the call: writers may not keep it.
        if (zeroOut) await writer.writePages(w + k, m, data, mask);
        else await writer.writePages(w + k, m, data);
        data.fill(0x5a);
      }
      i = j;
    }
  }
  return writer.end();
}
