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
  /** Where the notes start in the file (for error messages about them). */
  notesOffset?: number | undefined;
  /** The kernel's direct-map base (PAGE_OFFSET), when the input says (an ELF vmcore's PT_LOAD addresses). */
  pageOffset?: bigint | undefined;
  /** utsname from a kdump header, when the input has one. */
  utsname?: Utsname | undefined;
  /** Dump level the input was already filtered with (kdump inputs). */
  dumpLevel?: number | undefined;
  /** Compression used by the input (kdump inputs): 'none', 'zlib', 'lzo', 'snappy', 'zstd', 'mixed'. */
  compression?: string | undefined;
  /** PT_LOAD segments (ELF inputs), for `info`: the first MAX_LISTED_SEGMENTS of them. */
  segments?: readonly SegmentInfo[] | undefined;
  /** Number of PT_LOAD segments (ELF inputs), listed or not. */
  segmentCount?: number | undefined;
  /** eraseinfo text of a kdump input (header_version 5+; makedumpfile --config). */
  eraseinfo?: string | undefined;
  /** The parts of a split set read as one dump, in pfn order. */
  parts?: ReadonlyArray<{ file: string; startPfn: number; endPfn: number; bytes: number }> | undefined;
  /** Things worth telling the user that do not stop reading (an unknown header version, a field taken from its 32-bit copy). */
  warnings?: string[] | undefined;
  /** Header fields worth showing in `info`, format-specific. */
  details?: Record<string, string | number | boolean> | undefined;
}

/** PT_LOAD segments listed in DumpInfo.segments (the count is in segmentCount). */
export const MAX_LISTED_SEGMENTS = 4096;

/** Fewest pfns any image may span, whatever its size: 2^32 pfns (16 TiB of 4 KiB pages). */
export const MIN_PFN_SPAN_LIMIT = 2 ** 32;

/**
 * Most pfns an image that stores `storedBytes` bytes may span. Every pass
 * walks [0, maxPfn) window by window and a kdump-compressed output holds
 * two bitmaps of maxPfn/8 bytes each, so a header that claims more address
 * space than its file backs would cost work and output out of proportion
 * to the file: 8 pfns per stored byte (the two bitmaps at most twice the
 * input), and never less than MIN_PFN_SPAN_LIMIT for sparse guests.
 */
export function pfnSpanLimit(storedBytes: number): number {
  return Math.max(MIN_PFN_SPAN_LIMIT, 8 * storedBytes);
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
   * Runs of consecutive pfns among the kept pages (zero pages included: the
   * plan does not read page contents). ELF sizes its program header table
   * from it; writers that do not need it may ignore it.
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

export interface SalvageSummary {
  /** Bytes of the incomplete output. */
  bytes: number;
  /** Kept pages readable in it. */
  pagesWritten: number;
  /** Kept pages the plan had. */
  pagesPlanned: number;
  /** How the incompleteness is flagged (for the message). */
  flag: string;
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
  /** PT_LOAD program headers written (ELF). */
  segments?: number | undefined;
  /** Zero pages marked for leaving out that went to the output as data (ELF: its program header room spent). */
  zeroPagesStored?: number | undefined;
  /** Compression worker threads that ran (kdump; 0: the calling thread compressed). */
  workers?: number | undefined;
}

export interface DumpWriter {
  begin(plan: OutputPlan): Promise<void>;
  /** Bitmap bits for [start, start+count); windows arrive in ascending order, covering [0, maxPfn). */
  bitmaps(window: BitmapWindow): Promise<void>;
  /**
   * Kept pages in ascending pfn order. `zero`, when given, marks pages (by
   * index in this call) that are all zero and excluded as zero pages by the
   * dump level: the kdump writer points them at one shared zero page, the
   * ELF writer leaves them out. A writer that stores a marked page as data
   * after all (ELF, once its program header table is full) clears its mark,
   * so that afterwards `zero` marks exactly the pages left out.
   * `data` is only valid during the call.
   */
  writePages(pfn: number, count: number, data: Uint8Array, zero?: Uint8Array): Promise<void>;
  /** Finish and commit the output. */
  end(): Promise<WriteSummary>;
  /**
   * After a write error of the output (the disk full, an I/O error): keep
   * what reached it as an incomplete dump, flagged as such in its header,
   * whose written pages readers can still read. Returns undefined, and
   * removes the output, when that is not possible (a stream, an error that
   * was not the output's, nothing usable written). Never throws.
   */
  salvage?(): Promise<SalvageSummary | undefined>;
  /** Discard the output (after an error). Never throws. */
  abort(): Promise<void>;
}
