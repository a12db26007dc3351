/**
 * inspectDump(): what `dumpsieve info` shows — the input's headers, its
 * VMCOREINFO in brief, PT_LOAD segments, and what the kernel layer makes
 * of it (memory model, page-type encodings, how offline pages are found) —
 * and the crash summary (triage.ts): release, crash time, uptime, the panic
 * and what led to it, the crashing CPU's registers, memory totals with
 * offline and not-RAM pages, and what wrote the dump.
 *
 * The crash summary lives here rather than in a command of its own: it is
 * the first screen anyone wants of a dump, and it shares info's pass over
 * the pfns (counting offline pages needs struct page, which info opens
 * anyway).
 */
import { isDumpContentError } from '../core/errors.js';
import { MemMapFlagSource, type FlagSourceDescription } from '../classify/flagsource.js';
import { PfnState, type DumpReader, type SegmentInfo, type Utsname } from '../formats/types.js';
import { readUtsname } from '../kernel/utsname.js';
import { openInput, type DumpInput } from './input.js';
import { locateKernelImage } from './protect.js';
import { WindowScan } from './scan.js';
import { Prop } from '../kernel/props.js';
import { triage, type Triage } from './triage.js';

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
  /** The kernel image's pfn ranges, [start, end): the PG_reserved pages of the kernel-text mapping. */
  kernelImage?: Array<[number, number]> | undefined;
  /** Why the kernel image was not located. */
  kernelImageMissing?: string | undefined;
  /** The crash summary. */
  triage?: Triage | undefined;
  /** The parts of a split set, in pfn order. */
  parts?: ReadonlyArray<{ file: string; startPfn: number; endPfn: number; bytes: number }> | undefined;
  /** eraseinfo text of a kdump input (what makedumpfile --config erased). */
  eraseinfo?: string | undefined;
  /** What the reader noticed without stopping (an unknown header version, ...). */
  warnings?: string[] | undefined;
}

export interface InspectOptions {
  /** Compute the crash summary (reads the kernel log and every struct page); default true. */
  triage?: boolean | undefined;
}

const PAGE_KEY = /^(NUMBER\((PG_\w+|PAGE_\w+_MAPCOUNT_VALUE|HUGETLB_PAGE_DTOR|phys_base|SECTION_SIZE_BITS|MAX_PHYSMEM_BITS|pgtable_l5_enabled)\)|SIZE\((page|mem_section)\)|LENGTH\((mem_section|zone\.free_area)\)|SYMBOL\((mem_section|mem_map|init_top_pgt|vmemmap)\)|KERNELOFFSET)$/;

/** RAM and data pfns (from the reader), offline and hwpoison pages (from struct page, given a flag source). */
async function countPfns(reader: DumpReader, src: MemMapFlagSource | undefined): Promise<{ ram: number; absent: number; offline: number; hwpoison: number }> {
  const c = { ram: 0, absent: 0, offline: 0, hwpoison: 0 };
  for await (const w of new WindowScan(reader, src).windows()) {
    if (!w.ram) continue;
    const states = w.states;
    // From the page properties, so that pages a filter already left out still count.
    const props = w.props?.props;
    for (let i = 0; i < w.count; i++) {
      if (states[i] === PfnState.HOLE) continue;
      c.ram++;
      if (states[i] === PfnState.ABSENT) c.absent++;
      const p = props?.[i] ?? 0;
      if (p & (Prop.OFFLINE | Prop.OFFLINE_FALLBACK)) c.offline++;
      if (p & Prop.HWPOISON) c.hwpoison++;
    }
  }
  return c;
}

export async function inspectDump(input: DumpInput, opts: InspectOptions = {}): Promise<InfoReport> {
  const reader = await openInput(input);
  try {
    const info = reader.info;
    const vi = info.vmcoreinfo;
    let src: MemMapFlagSource | undefined;
    let kernelError: string | undefined;
    if (vi) {
      try {
        src = await MemMapFlagSource.open(reader);
      } catch (err) {
        if (!isDumpContentError(err)) throw err;
        kernelError = err.message;
      }
    }
    // One pass over the pfns: RAM and data from the reader; offline and
    // hwpoison pages from struct page when the crash summary wants them
    // (a mem_map that cannot be read leaves them unknown).
    let counts = opts.triage !== false && src ? await countPfns(reader, src).catch((err: unknown) => {
      if (isDumpContentError(err)) return undefined;
      throw err;
    }) : undefined;
    const counted = counts !== undefined;
    counts ??= await countPfns(reader, undefined);
    const { ram, absent, offline, hwpoison } = counts;
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
    if (vi) {
      const pageKeys: Record<string, string> = {};
      for (const k of vi.keys()) if (PAGE_KEY.test(k)) pageKeys[k] = vi.get(k)!;
      report.vmcoreinfo = { osrelease: vi.osrelease, crashTime: vi.crashTime, keys: vi.size, pageKeys };
      if (src) {
        try {
          report.kernel = src.describe();
          // The image proper (PG_reserved pages of the kernel-text mapping), as filter protects it.
          const image = await locateKernelImage(reader, src);
          if (image.found) report.kernelImage = image.ranges.toJSON();
          else report.kernelImageMissing = image.why;
          // Best effort: an image without a readable init_uts_ns still gets a report.
          report.utsname ??= await readUtsname(vi, src.translator).catch((err: unknown) => {
            if (isDumpContentError(err)) return undefined;
            throw err;
          });
        } catch (err) {
          if (!isDumpContentError(err)) throw err;
          report.kernelError = err.message;
        }
      } else report.kernelError = kernelError;
    }
    if (opts.triage !== false) {
      report.triage = await triage({
        reader,
        release: report.utsname?.release || vi?.osrelease,
        version: report.utsname?.version || undefined,
        memory: {
          pageSize: info.pageSize,
          ramPages: ram,
          dataPages: ram - absent,
          absentPages: absent,
          notRamPages: info.maxPfn - ram,
          offlinePages: counted ? offline : undefined,
          hwpoisonPages: counted ? hwpoison : undefined,
        },
      });
    }
    if (info.segments) report.segments = { count: info.segmentCount ?? info.segments.length, first: info.segments.slice(0, 16) };
    return report;
  } finally {
    await reader.close();
  }
}
