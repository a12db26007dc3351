/**
 * Page codecs of the kdump-compressed format (page_desc.flags):
 *
 *   zlib   0x01  an RFC 1950 stream, as zlib's compress2() writes it (level 1,
 *                makedumpfile's Z_BEST_SPEED)
 *   lzo    0x02  LZO1X-1
 *   snappy 0x04  the raw Snappy block format (not the framing format)
 *   zstd   0x20  one normal Zstandard frame (level 1, as makedumpfile)
 *
 * Compression works on batches: N pages of one buffer in, per-page stored
 * sizes and flags plus the stored bytes concatenated out. A page is stored
 * compressed only when that is smaller than the page, otherwise raw with
 * flags 0 and size = page size (makedumpfile's rule; libkdumpfile 0.5.1
 * overflows a page-sized buffer on larger "compressed" pages). The same
 * batch runs in worker threads (./pool.ts).
 *
 * Decompression is bounded: the output never exceeds the page size, and a
 * stream that would inflate further, or to fewer bytes, is reported as
 * damaged. Failures are returned as a sentence (no exception on the hot
 * path); the reader adds file and offset.
 */
import { createRequire } from 'node:module';
import { deflateSync, inflateSync } from 'node:zlib';
import type { Codec } from '../../types.js';

const require = createRequire(import.meta.url);

/** The subset of the `lzo` package used here (LZO1X-1 via minilzo). */
interface LzoModule {
  compress(input: Buffer): Buffer;
  decompress(input: Buffer, maxLength: number): Buffer;
}
type ZstdBinding = typeof import('zstd-napi/binding.js');
type SnappyModule = typeof import('snappy');

/** Module paths of the native codec packages (worker threads load them by path). */
export const CODEC_MODULES = {
  lzo: require.resolve('lzo'),
  snappy: require.resolve('snappy'),
  zstd: require.resolve('zstd-napi/binding.js'),
} as const;

let lzoMod: LzoModule | undefined;
let snappyMod: SnappyModule | undefined;
let zstdMod: ZstdBinding | undefined;
const lzo = (): LzoModule => (lzoMod ??= require(CODEC_MODULES.lzo) as LzoModule);
const snappy = (): SnappyModule => (snappyMod ??= require(CODEC_MODULES.snappy) as SnappyModule);
const zstd = (): ZstdBinding => (zstdMod ??= require(CODEC_MODULES.zstd) as ZstdBinding);

export type PageCodecName = Exclude<Codec, 'none'>;

/** page_desc.flags / disk_dump_header.status bit of each codec. */
export const CODEC_FLAG: Readonly<Record<Codec, number>> = { none: 0, zlib: 0x1, lzo: 0x2, snappy: 0x4, zstd: 0x20 };
/** Every compression bit. */
export const COMPRESSION_MASK = 0x1 | 0x2 | 0x4 | 0x20;
/** Compression levels makedumpfile uses (Z_BEST_SPEED; ZSTD_compressCCtx(..., 1)). */
export const ZLIB_LEVEL = 1;
export const ZSTD_LEVEL = 1;

/** The codec a page_desc.flags value names: 'none' for 0, undefined for anything but one known bit. */
export function codecOfFlags(flags: number): Codec | undefined {
  switch (flags) {
    case 0:
      return 'none';
    case 0x1:
      return 'zlib';
    case 0x2:
      return 'lzo';
    case 0x4:
      return 'snappy';
    case 0x20:
      return 'zstd';
    default:
      return undefined;
  }
}

/** Codecs named by the compression bits of a status word, in flag order. */
export function codecsOfStatus(status: number): PageCodecName[] {
  const out: PageCodecName[] = [];
  if (status & 0x1) out.push('zlib');
  if (status & 0x2) out.push('lzo');
  if (status & 0x4) out.push('snappy');
  if (status & 0x20) out.push('zstd');
  return out;
}

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

/** In-thread page compressor for one codec and page size. */
export class PageCompressor {
  readonly flag: number;
  private readonly one: (page: Buffer) => Uint8Array;

  constructor(
    readonly codec: Codec,
    readonly pageSize: number,
  ) {
    this.flag = CODEC_FLAG[codec];
    this.one = makeCompressOne(codec, pageSize);
  }

  /**
   * Compress `count` pages of `input` into `out` (whose buffers must hold
   * `count` pages). Pages that do not shrink are stored raw.
   */
  compress(input: Uint8Array, count: number, out: CompressedBatch): CompressedBatch {
    const ps = this.pageSize;
    if (input.length < count * ps) throw new RangeError(`PageCompressor: ${count} pages need ${count * ps} bytes, have ${input.length}`);
    if (out.data.length < count * ps || out.sizes.length < count) throw new RangeError('PageCompressor: output batch too small');
    const buf = Buffer.from(input.buffer, input.byteOffset, count * ps);
    const data = out.data;
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const page = buf.subarray(i * ps, (i + 1) * ps);
      const c = this.flag === 0 ? page : this.one(page);
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

function makeCompressOne(codec: Codec, ps: number): (page: Buffer) => Uint8Array {
  switch (codec) {
    case 'none':
      return (page) => page;
    case 'zlib':
      return (page) => deflateSync(page, { level: ZLIB_LEVEL, chunkSize: ps });
    case 'lzo': {
      const m = lzo();
      return (page) => m.compress(page);
    }
    case 'snappy': {
      const m = snappy();
      return (page) => m.compressSync(page);
    }
    case 'zstd': {
      const z = zstd();
      const cctx = new z.CCtx();
      const scratch = Buffer.alloc(z.compressBound(ps));
      return (page) => scratch.subarray(0, cctx.compress(scratch, page, ZSTD_LEVEL));
    }
  }
}

/**
 * Decompresses single pages of one page size into caller buffers. Keeps
 * one zstd context; everything else is stateless.
 */
export class PageDecompressor {
  private dctx: InstanceType<ZstdBinding['DCtx']> | undefined;

  constructor(readonly pageSize: number) {}

  /**
   * Decode stored page bytes `src` (page_desc.flags `flags`) into
   * `dst[dstOff, dstOff + pageSize)`. Returns undefined on success, else
   * what is wrong (the destination is then undefined).
   */
  decompress(flags: number, src: Uint8Array, dst: Uint8Array, dstOff: number): string | undefined {
    const ps = this.pageSize;
    switch (flags) {
      case 0:
        if (src.length !== ps) return `raw page is ${src.length} bytes, not the block size ${ps}`;
        dst.set(src, dstOff);
        return undefined;
      case 0x1:
        return this.zlib(src, dst, dstOff);
      case 0x2:
        return this.lzo(src, dst, dstOff);
      case 0x4:
        return this.snappy(src, dst, dstOff);
      case 0x20:
        return this.zstd(src, dst, dstOff);
      default:
        return `page flags 0x${flags.toString(16)} name no single known compression`;
    }
  }

  private zlib(src: Uint8Array, dst: Uint8Array, dstOff: number): string | undefined {
    const ps = this.pageSize;
    let out: Buffer;
    try {
      out = inflateSync(src, { maxOutputLength: ps });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ERR_BUFFER_TOO_LARGE') return `zlib data inflates to more than the block size ${ps}`;
      return `zlib data is damaged (${e.message})`;
    }
    if (out.length !== ps) return `zlib data inflates to ${out.length} bytes, not the block size ${ps}`;
    dst.set(out, dstOff);
    return undefined;
  }

  private lzo(src: Uint8Array, dst: Uint8Array, dstOff: number): string | undefined {
    const ps = this.pageSize;
    let out: Buffer;
    try {
      out = lzo().decompress(Buffer.from(src.buffer, src.byteOffset, src.byteLength), ps);
    } catch (err) {
      const msg = (err as Error).message;
      if (msg.includes('OUTPUT_OVERRUN')) return `lzo data inflates to more than the block size ${ps}`;
      return `lzo data is damaged (${msg})`;
    }
    if (out.length !== ps) return `lzo data inflates to ${out.length} bytes, not the block size ${ps}`;
    dst.set(out, dstOff);
    return undefined;
  }

  private snappy(src: Uint8Array, dst: Uint8Array, dstOff: number): string | undefined {
    const ps = this.pageSize;
    // The raw block format starts with the uncompressed length as a varint:
    // check it before the library allocates that much.
    const declared = snappyLength(src);
    if (declared === undefined) return 'snappy data has no valid length preamble';
    if (declared !== ps) return `snappy data declares ${declared} bytes, not the block size ${ps}`;
    let out: Buffer;
    try {
      out = snappy().uncompressSync(src, { asBuffer: true }) as Buffer;
    } catch (err) {
      return `snappy data is damaged (${(err as Error).message})`;
    }
    if (out.length !== ps) return `snappy data inflates to ${out.length} bytes, not the block size ${ps}`;
    dst.set(out, dstOff);
    return undefined;
  }

  private zstd(src: Uint8Array, dst: Uint8Array, dstOff: number): string | undefined {
    const ps = this.pageSize;
    const z = zstd();
    this.dctx ??= new z.DCtx();
    let n: number;
    try {
      // Decodes straight into the destination; the capacity is the bound.
      n = this.dctx.decompress(dst.subarray(dstOff, dstOff + ps), src);
    } catch (err) {
      const msg = (err as Error).message;
      if (/too small/i.test(msg)) return `zstd data inflates to more than the block size ${ps}`;
      return `zstd data is damaged (${msg})`;
    }
    if (n !== ps) return `zstd data inflates to ${n} bytes, not the block size ${ps}`;
    return undefined;
  }
}

/** The uncompressed length a raw Snappy block declares (varint, at most 5 bytes), or undefined. */
export function snappyLength(src: Uint8Array): number | undefined {
  let v = 0;
  for (let i = 0; i < 5 && i < src.length; i++) {
    const b = src[i]!;
    v += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return v;
  }
  return undefined;
}
