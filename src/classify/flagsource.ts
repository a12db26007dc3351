/**
 * Page-flag sources: where page properties come from for a window of pfns.
 *
 * - MemMapFlagSource reads struct page from the image's own mem_map (found
 *   through VMCOREINFO), about 1.5 % of the image, in one batch per window.
 * - A /proc/kpageflags-style table beside the image (kpageflags.ts).
 */
import { DumpError } from '../core/errors.js';
import type { DumpReader } from '../formats/types.js';
import { MemMap } from '../kernel/memmap.js';
import { Prop, type PropWindow } from '../kernel/props.js';
import { StructPageDecoder, type DecoderDescription } from '../kernel/structpage.js';
import { X86_64Translator } from '../kernel/x86_64.js';

/** Struct pages read at a time when filling a window (the read buffer's size in pages). */
const FILL_PAGES = 4096;

export interface FlagSourceDescription {
  kind: 'mem_map' | 'kpageflags';
  /** e.g. 'SPARSEMEM_EXTREME + VMEMMAP, 8 of 8 sections present' */
  layout: string;
  decoder?: DecoderDescription | undefined;
}

export interface PageFlagSource {
  readonly kind: 'mem_map' | 'kpageflags';
  describe(): FlagSourceDescription;
  /** Fill `win` (already reset to its start/count) with page properties. */
  fill(win: PropWindow): Promise<void>;
  /** Keys the dump level needs that the source lacks (empty if none). */
  missingFor(level: number): string[];
  /** LENGTH(zone.free_area), when known (unaccepted-page ranges). */
  readonly freeAreaLength: number | undefined;
  /** Counters of trouble met while reading (reported, not fatal). */
  readonly warnings: Map<string, number>;
  /**
   * Pfns from here on are memory the kernel does not describe (no struct
   * page above): they are treated as holes, as makedumpfile does by
   * trimming max_mapnr (see MemMap.memmapEnd). Undefined: no limit.
   */
  readonly pfnLimit?: number | undefined;
  close(): Promise<void>;
}

export class MemMapFlagSource implements PageFlagSource {
  readonly kind = 'mem_map' as const;
  readonly warnings = new Map<string, number>();
  private buf: Uint8Array;

  private constructor(
    readonly translator: X86_64Translator,
    readonly memmap: MemMap,
    readonly decoder: StructPageDecoder,
  ) {
    this.buf = new Uint8Array(0);
  }

  /** Set up from the reader's VMCOREINFO; throws a DumpError if it cannot be used. */
  static async open(reader: DumpReader): Promise<MemMapFlagSource> {
    const vi = reader.info.vmcoreinfo;
    const file = reader.info.file;
    if (!vi) throw new DumpError('VMCOREINFO_MISSING', 'the image has no VMCOREINFO note, needed to read struct page', { file });
    const pageSize = vi.requirePageSize();
    if (pageSize !== reader.info.pageSize) {
      throw new DumpError('DUMP_CORRUPT', `VMCOREINFO PAGESIZE ${pageSize} differs from the image's page size ${reader.info.pageSize}`, { file });
    }
    const decoder = new StructPageDecoder(vi, file);
    const tr = X86_64Translator.fromVmcoreinfo(vi, reader);
    const memmap = await MemMap.locate(vi, tr, reader.info.maxPfn, file);
    return new MemMapFlagSource(tr, memmap, decoder);
  }

  get freeAreaLength(): number | undefined {
    return this.decoder.freeAreaLength;
  }

  get pfnLimit(): number | undefined {
    const end = this.memmap.memmapEnd();
    return end > 0 ? end : undefined;
  }

  describe(): FlagSourceDescription {
    return { kind: 'mem_map', layout: this.memmap.describe(), decoder: this.decoder.describe() };
  }

  missingFor(level: number): string[] {
    return this.decoder.missingFor(level);
  }

  async fill(win: PropWindow): Promise<void> {
    const start = win.start;
    const end = start + win.count;
    const size = this.decoder.size;
    // Everything without a memmap piece is NOMEMMAP.
    win.props.fill(Prop.NOMEMMAP, 0, win.count);
    for (const piece of this.memmap.pieces(start, end)) {
      // At most FILL_PAGES struct pages per read: the buffer stays small
      // (256 KiB of 64-byte struct pages) whatever the window holds.
      for (let first = piece.start; first < piece.end; first += FILL_PAGES) {
        const n = Math.min(FILL_PAGES, piece.end - first);
        const bytes = n * size;
        if (this.buf.length < bytes) this.buf = new Uint8Array(bytes);
        const at = first - start;
        const vaddr = piece.vaddr + BigInt((first - piece.start) * size);
        try {
          await this.translator.read(vaddr, bytes, this.buf, 0);
          this.decoder.decode(this.buf, 0, first, n, win, at);
        } catch (err) {
          if (!(err instanceof DumpError) || (err.code !== 'ADDRESS_UNMAPPED' && err.code !== 'DUMP_TRUNCATED')) throw err;
          await this.fillSlowly(first, n, vaddr, win, at);
        }
      }
    }
  }

  /** Read a piece 64 struct pages at a time; unreadable parts stay NOMEMMAP. */
  private async fillSlowly(pfn: number, n: number, vaddr: bigint, win: PropWindow, at: number): Promise<void> {
    const size = this.decoder.size;
    const step = 64;
    for (let k = 0; k < n; k += step) {
      const m = Math.min(step, n - k);
      try {
        await this.translator.read(vaddr + BigInt(k * size), m * size, this.buf, 0);
        this.decoder.decode(this.buf, 0, pfn + k, m, win, at + k);
      } catch (err) {
        if (!(err instanceof DumpError)) throw err;
        const key = 'struct page not readable (pfns kept)';
        this.warnings.set(key, (this.warnings.get(key) ?? 0) + m);
      }
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
