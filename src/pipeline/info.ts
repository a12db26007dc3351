/**
 * inspectDump(): what `dumpsieve info` shows — the input's headers, its
 * VMCOREINFO in brief, PT_LOAD segments, and what the kernel layer makes
 * of it (memory model, page-type encodings, how offline pages are found).
 */
import { DumpError } from '../core/errors.js';
import { MemMapFlagSource, type FlagSourceDescription } from '../classify/flagsource.js';
import type { SegmentInfo, Utsname } from '../formats/types.js';
import { readUtsname } from '../kernel/utsname.js';
import { openInput, type DumpInput } from './input.js';
import { WINDOW } from './window.js';

export interface InfoReport {
  file: string;
  format: string;
  bytes: number;
  arch: string;
  pageSize: number;
  maxPfn: number;
  cpus: number;
  ramPages: number;
  absentPages: number;
  details: Record<string, string | number | boolean>;
  utsname?: Utsname | undefined;
  vmcoreinfo?: {
    osrelease?: string | undefined;
    crashTime?: number | undefined;
    keys: number;
    /** Keys that decide page classification, with their values. */
    pageKeys: Record<string, string>;
  } | undefined;
  segments?: { count: number; first: SegmentInfo[] } | undefined;
  kernel?: FlagSourceDescription | undefined;
  /** Why struct page could not be used, if it could not. */
  kernelError?: string | undefined;
  kernelImage?: Array<[number, number]> | undefined;
  /** The parts of a split set, in pfn order. */
  parts?: ReadonlyArray<{ file: string; startPfn: number; endPfn: number; bytes: number }> | undefined;
  /** eraseinfo text of a kdump input (what makedumpfile --config erased). */
  eraseinfo?: string | undefined;
  /** What the reader noticed without stopping (an unknown header version, ...). */
  warnings?: string[] | undefined;
}

const PAGE_KEY = /^(NUMBER\((PG_\w+|PAGE_\w+_MAPCOUNT_VALUE|HUGETLB_PAGE_DTOR|phys_base|SECTION_SIZE_BITS|MAX_PHYSMEM_BITS|pgtable_l5_enabled)\)|SIZE\((page|mem_section)\)|LENGTH\((mem_section|zone\.free_area)\)|SYMBOL\((mem_section|mem_map|init_top_pgt|vmemmap)\)|KERNELOFFSET)$/;

export async function inspectDump(input: DumpInput): Promise<InfoReport> {
  const reader = await openInput(input);
  try {
    const info = reader.info;
    const states = new Uint8Array(WINDOW);
    let ram = 0;
    let absent = 0;
    for (let w = 0; w < info.maxPfn; w += WINDOW) {
      const n = Math.min(WINDOW, info.maxPfn - w);
      await reader.pfnStates(w, n, states);
      for (let i = 0; i < n; i++) {
        if (states[i] !== 0) ram++;
        if (states[i] === 1) absent++;
      }
    }
    const report: InfoReport = {
      file: info.file,
      format: info.format,
      bytes: info.fileSize,
      arch: info.arch,
      pageSize: info.pageSize,
      maxPfn: info.maxPfn,
      cpus: info.cpus,
      ramPages: ram,
      absentPages: absent,
      details: info.details ?? {},
      utsname: info.utsname,
      parts: info.parts,
      eraseinfo: info.eraseinfo,
      warnings: info.warnings,
    };
    const vi = info.vmcoreinfo;
    if (vi) {
      const pageKeys: Record<string, string> = {};
      for (const k of vi.keys()) if (PAGE_KEY.test(k)) pageKeys[k] = vi.get(k)!;
      report.vmcoreinfo = { osrelease: vi.osrelease, crashTime: vi.crashTime, keys: vi.size, pageKeys };
      try {
        const src = await MemMapFlagSource.open(reader);
        report.kernel = src.describe();
        report.kernelImage = (await src.translator.kernelImagePfns()).map((r) => [r.start, r.end]);
        report.utsname ??= await readUtsname(vi, src.translator).catch(() => undefined);
      } catch (err) {
        if (!(err instanceof DumpError)) throw err;
        report.kernelError = err.message;
      }
    }
    if (info.segments) report.segments = { count: info.segmentCount ?? info.segments.length, first: info.segments.slice(0, 16) };
    return report;
  } finally {
    await reader.close();
  }
}
