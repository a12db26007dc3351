/**
 * What every dump reader and writer agrees on. A reader exposes the
 * physical pages of one image; a writer receives kept pages in ascending
 * pfn order and produces one output format.
 */
import type { VmcoreInfo } from './vmcoreinfo.js';

/** Per-pfn state a reader reports for a window of pfns. */
export const PfnState = {
  /** Not RAM in this image (no PT_LOAD / not in the 1st bitmap). */
  HOLE: 0,
  /** RAM, but the image holds no data for it (excluded earlier, or an ELF p_memsz tail). */
  ABSENT: 1,
  /** RAM with data in the image. */
  PRESENT: 2,
} as const;
export type PfnStateCode = (typeof PfnState)[keyof typeof PfnState];

export interface Utsname {
  sysname: string;
  nodename: string;
  release: string;
  version: string;
  machine: string;
  domainname: string;
}

export interface SegmentInfo {
  paddr: number;
  vaddr: bigint;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

export interface DumpInfo {
  /** 'elf', 'kdump', 'flattened-kdump', 'flattened-elf', ... */
  format: string;
  /** File name as the user gave it. */
  file: string;
  fileSize: number;
  arch: 'x86_64';
  pageSize: number;
  /** One past the highest pfn the image describes. */
  maxPfn: number;
  vmcoreinfo: VmcoreInfo | undefined;
  /** Raw ELF note bytes (as in the PT_NOTE segment), copied into outputs. */
  notes: Uint8Array;
  /** Number of NT_PRSTATUS notes (CPUs). */
  cpus: number;
  /** utsname from a kdump header, when the input has one. */
  utsname?: Utsname | undefined;
  /** Dump level the input was already filtered with (kdump inputs). */
  dumpLevel?: number | undefined;
  /** Compression used by the input (kdump inputs): 'none', 'zlib', 'lzo', 'snappy', 'zstd', 'mixed'. */
  compression?: string | undefined;
  /** PT_LOAD segments (ELF inputs), for `info`. */
  segments?: readonly SegmentInfo[] | undefined;
  /** Header fields worth showing in `info`, format-specific. */
  details?: Record<string, string | number | boolean> | undefined;
}

export interface DumpReader {
  readonly info: DumpInfo;
  /**
   * Fill out[0..count) with the PfnState of pfns [start, start+count).
   * Pfns at or beyond maxPfn are HOLE.
   */
  pfnStates(start: number, count: number, out: Uint8Array): Promise<void>;
  /**
   * Read `count` pages from pfn `pfn` into `into` at `offset`. Every pfn must
   * be PRESENT; ELF pages that are partly covered read as zeros elsewhere.
   */
  readPages(pfn: number, count: number, into: Uint8Array, offset?: number): Promise<void>;
  /**
   * Read bytes at a physical address (page tables, mem_section, struct page
   * arrays). Fails with ADDRESS_UNMAPPED if the bytes are not in the image.
   */
  readPhys(paddr: number, length: number, into: Uint8Array, offset?: number): Promise<void>;
  close(): Promise<void>;
}

/** Page compression of kdump-compressed output: 'none' or a name of the codec table (kdump/codecs/table.ts). */
export type { Codec } from './kdump/codecs/table.js';

/** Everything a writer needs before the first page. */
export interface OutputPlan {
  pageSize: number;
  /** One past the highest pfn; sizes the bitmaps. */
  maxPfn: number;
  /** Pages that will be passed to writePages (zero pages included). */
  keptPages: number;
  /**
   * Runs of kept pfns that will be written (ELF needs this for its program
   * header count; zero-excluded pages split runs). Writers that do not need
   * it may ignore it.
   */
  keptRuns: number;
  dumpLevel: number;
  /** Raw ELF note bytes from the input (NT_PRSTATUS..., VMCOREINFO). */
  notes: Uint8Array;
  vmcoreinfo: VmcoreInfo | undefined;
  cpus: number;
  utsname: Utsname;
  /** Seconds since the epoch for the header timestamp (CRASHTIME or now). */
  timestamp: number;
  physBase: number;
  /** For ELF output: p_vaddr = pageOffset + p_paddr. */
  pageOffset: bigint;
}

/** Bits of one window of the bitmaps, for formats that store them. */
export interface BitmapWindow {
  /** First pfn of the window; a multiple of 8. */
  start: number;
  /** Number of pfns (a multiple of 8, except the last window). */
  count: number;
  /** 1st bitmap: RAM (LSB-first, bit i = pfn start+i). */
  ram: Uint8Array;
  /** 2nd bitmap: dumped. */
  dumped: Uint8Array;
}

export interface WriteSummary {
  /** Bytes of the finished output. */
  bytes: number;
  /** Pages whose data went to the output (zero pages that share one block count once each). */
  pagesWritten: number;
  /** Page-data bytes after compression. */
  dataBytes: number;
  /** Pages stored compressed (kdump). */
  pagesCompressed?: number | undefined;
  /** Program headers written (ELF). */
  segments?: number | undefined;
}

export interface DumpWriter {
  begin(plan: OutputPlan): Promise<void>;
  /** Bitmap bits for [start, start+count); windows arrive in ascending order, covering [0, maxPfn). */
  bitmaps(window: BitmapWindow): Promise<void>;
  /**
   * Kept pages in ascending pfn order. `zero`, when given, marks pages (by
   * index in this call) that are all zero and excluded as zero pages by the
   * dump level: the kdump writer points them at one shared zero page.
   * `data` is only valid during the call.
   */
  writePages(pfn: number, count: number, data: Uint8Array, zero?: Uint8Array): Promise<void>;
  /** Finish and commit the output. */
  end(): Promise<WriteSummary>;
  /** Discard the output (after an error). Never throws. */
  abort(): Promise<void>;
}
