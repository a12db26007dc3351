/**
 * Page compression of the kdump-compressed format, on batches: N pages of
 * one buffer in, per-page stored sizes and flags plus the stored bytes
 * concatenated out. A page is stored compressed only when that is smaller
 * than the page, otherwise raw with flags 0 and size = page size
 * (makedumpfile's rule; libkdumpfile 0.5.1 overflows a page-sized buffer
 * on larger "compressed" pages). The same batch runs in worker threads
 * (./pool.ts, ./worker.ts). The codecs themselves are in ./table.ts.
 *
 * Decompression is bounded: the output never exceeds the page size, and a
 * stream that would inflate further, or to fewer bytes, is reported as
 * damaged. Failures are returned as a sentence (no exception on the hot
 * path); the reader adds file and offset.
 */
import { PAGE_CODECS, codecFlag, codecOfFlags, loadCodec, type Codec, type PageCodecName, type PageDecode, type PageEncode } from './table.js';

export * from './table.js';
export { snappyLength } from './snappy.js';

/** Output of one compressed batch. Buffers are reused from batch to batch. */
export interface CompressedBatch {
  /** Pages in the batch. */
  count: number;
  /** Stored size of page i (compressed size, or the page size when raw). */
  sizes: Uint32Array;
  /** page_desc.flags of page i (the codec flag, or 0 when raw). */
  flags: Uint32Array;
  /** Stored bytes of every page, in order; `length` of them are valid. */
  data: Uint8Array;
  length: number;
}

/** A batch able to hold `maxPages` pages of `pageSize` (stored output never exceeds the input). */
export function allocBatch(maxPages: number, pageSize: number): CompressedBatch {
  return {
    count: 0,
    sizes: new Uint32Array(maxPages),
    flags: new Uint32Array(maxPages),
    data: new Uint8Array(maxPages * pageSize),
    length: 0,
  };
}

/** Batch page compressor for one codec and page size (one per thread: it keeps codec state). */
export class PageCompressor {
  readonly flag: number;

  private constructor(
    readonly codec: Codec,
    readonly pageSize: number,
    private readonly one: PageEncode | undefined,
  ) {
    this.flag = codecFlag(codec);
  }

  /** A compressor for `codec` ('none' stores every page raw), its implementation loaded. */
  static async create(codec: Codec, pageSize: number): Promise<PageCompressor> {
    if (codec !== 'none' && codecOfFlags(codecFlag(codec)) !== codec) throw new RangeError(`PageCompressor: unknown codec '${codec}'`);
    const one = codec === 'none' ? undefined : (await loadCodec(codec)).compressor(pageSize);
    return new PageCompressor(codec, pageSize, one);
  }

  /**
   * One page: its compressed bytes when they are smaller than the page
   * (valid until the next call), else undefined (the page is stored raw).
   * The same choice as compress().
   */
  page(page: Uint8Array): Uint8Array | undefined {
    const one = this.one;
    if (one === undefined) return undefined;
    const c = one(page);
    return c.length < this.pageSize ? c : undefined;
  }

  /**
   * Compress `count` pages of `input` into `out` (whose buffers must hold
   * `count` pages). Pages that do not shrink are stored raw.
   */
  compress(input: Uint8Array, count: number, out: CompressedBatch): CompressedBatch {
    const ps = this.pageSize;
    if (input.length < count * ps) throw new RangeError(`PageCompressor: ${count} pages need ${count * ps} bytes, have ${input.length}`);
    if (out.data.length < count * ps || out.sizes.length < count) throw new RangeError('PageCompressor: output batch too small');
    const data = out.data;
    const one = this.one;
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const page = input.subarray(i * ps, (i + 1) * ps);
      const c = one === undefined ? page : one(page);
      if (c.length < ps) {
        data.set(c, pos);
        out.sizes[i] = c.length;
        out.flags[i] = this.flag;
        pos += c.length;
      } else {
        data.set(page, pos);
        out.sizes[i] = ps;
        out.flags[i] = 0;
        pos += ps;
      }
    }
    out.count = count;
    out.length = pos;
    return out;
  }
}

/**
 * Decompresses single pages of one page size into caller buffers. The
 * codecs a dump uses are loaded on demand: `ready(flags)` says whether
 * `decompress` can decode pages with these flags now, `prepare(flags)`
 * loads them.
 */
export class PageDecompressor {
  /** Decoders by flag bit position. */
  private readonly decoders: Array<PageDecode | undefined> = [];
  private readyBits = 0;

  constructor(readonly pageSize: number) {}

  /** True when pages with these page_desc.flags can be decoded now. */
  ready(flags: number): boolean {
    return (flags & ~this.readyBits) === 0;
  }

  /** Load the codecs named by the bits of `flags` (unknown bits are ignored). */
  async prepare(flags: number): Promise<void> {
    for (const c of PAGE_CODECS) {
      if ((flags & c.flag) === 0 || (this.readyBits & c.flag) !== 0) continue;
      const impl = await loadCodec(c.name as PageCodecName);
      this.decoders[31 - Math.clz32(c.flag)] = impl.decompressor(this.pageSize);
      this.readyBits |= c.flag;
    }
  }

  /**
   * Decode stored page bytes `src` (page_desc.flags `flags`) into
   * `dst[dstOff, dstOff + pageSize)`. Returns undefined on success, else
   * what is wrong (the destination is then undefined).
   */
  decompress(flags: number, src: Uint8Array, dst: Uint8Array, dstOff: number): string | undefined {
    const ps = this.pageSize;
    if (flags === 0) {
      if (src.length !== ps) return `raw page is ${src.length} bytes, not the block size ${ps}`;
      dst.set(src, dstOff);
      return undefined;
    }
    const codec = codecOfFlags(flags);
    if (codec === undefined || codec === 'none') return `page flags 0x${flags.toString(16)} name no single known compression`;
    const decode = this.decoders[31 - Math.clz32(flags)];
    if (decode === undefined) throw new Error(`PageDecompressor: ${codec} used before prepare()`);
    const r = decode(src, dst, dstOff);
    if (typeof r === 'string') return `${codec} data ${r}`;
    if (r !== ps) return `${codec} data inflates to ${r} bytes, not the block size ${ps}`;
    return undefined;
  }
}
