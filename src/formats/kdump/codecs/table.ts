/**
 * The page codecs of the kdump-compressed format, one entry each: the only
 * place that names them. The header's status bits and their names
 * (header.ts), the reader's flag checks, the writer's default thread
 * count, the CLI's compression options (cli/options.ts), the worker pool
 * (which loads the same implementation in each worker) and analyze's
 * columns are derived from it. A new codec is a new entry here, its
 * implementation beside this file, and its pinned output in
 * test/formats/kdump/codec-identity.test.ts.
 *
 * Flags are diskdump_mod.h's DUMP_DH_COMPRESSED_*: the same bit in
 * disk_dump_header.status (the dump's codec) and in page_desc.flags (a
 * page stored with it; 0 = raw). Levels are makedumpfile's: zlib
 * compress2(..., Z_BEST_SPEED), zstd ZSTD_compressCCtx(..., 1).
 */
import { UsageError } from '../../../core/errors.js';
import { lzo1xDecompress } from './lzo.js';
import { lzoPageCompressor } from './lzo-wasm.js';
import { SnappyCompressor, snappyBound, snappyDecompress, snappyLength } from './snappy.js';

/**
 * Decodes one stored page into dst[dstOff, dstOff + page size). Returns the
 * number of bytes it produced, or what is wrong as a phrase that follows
 * "<codec> data " ("is damaged (...)", "inflates to more than the block
 * size 4096"). Never writes past the page.
 */
export type PageDecode = (src: Uint8Array, dst: Uint8Array, dstOff: number) => number | string;
/** Compresses one page; the result is valid until the next call. */
export type PageEncode = (page: Uint8Array) => Uint8Array;

/** A loaded codec: factories of per-page-size encoders and decoders (each keeps its own state). */
export interface CodecImpl {
  compressor(pageSize: number): PageEncode;
  decompressor(pageSize: number): PageDecode;
}

export interface PageCodecSpec {
  /** dumpsieve's name (reports, JSON, the library's `codec` option). */
  readonly name: string;
  /** DUMP_DH_COMPRESSED_* bit: disk_dump_header.status and page_desc.flags. */
  readonly flag: number;
  /** The diskdump_mod.h name of the bit. */
  readonly macro: string;
  /** makedumpfile's option letter (`-c`), and dumpsieve's long option (`--zlib`). */
  readonly letter: string;
  readonly long: string;
  /** Compress in worker threads by default: the codec is slower than reading and writing. */
  readonly threaded: boolean;
  /** The implementation runs only as WebAssembly (no JavaScript fallback). */
  readonly wasmOnly: boolean;
  /** The implementation: the main thread and every compression worker load it (once per thread). */
  load(): Promise<CodecImpl>;
}

const ZLIB_LEVEL = 1;
const ZSTD_LEVEL = 1;

const bigger = (ps: number): string => `inflates to more than the block size ${ps}`;

const lzo: CodecImpl = {
  compressor: lzoPageCompressor,
  decompressor: (ps) => (src, dst, dstOff) => {
    const r = lzo1xDecompress(src, dst, dstOff, ps);
    if (typeof r === 'number') return r;
    return r === 'output overrun' ? bigger(ps) : `is damaged (${r})`;
  },
};

const snappy: CodecImpl = {
  compressor: (ps) => {
    const c = new SnappyCompressor();
    const out = new Uint8Array(snappyBound(ps));
    return (page) => out.subarray(0, c.compress(page, page.length, out));
  },
  decompressor: (ps) => (src, dst, dstOff) => {
    // The raw block format starts with the uncompressed length: check it first.
    const declared = snappyLength(src);
    if (declared === undefined) return 'has no valid length preamble';
    if (declared !== ps) return `declares ${declared} bytes, not the block size ${ps}`;
    const r = snappyDecompress(src, dst, dstOff, ps);
    return typeof r === 'number' ? r : `is damaged (${r})`;
  },
};

async function loadZlib(): Promise<CodecImpl> {
  // Loaded on first use, with node:zlib: runs without zlib pages do not pay for it.
  const z = await import('./zlib.js');
  return {
    compressor: (ps) => z.zlibPageCompressor(ps, ZLIB_LEVEL),
    decompressor: (ps) => {
      const inflate = z.zlibPageDecompressor(ps);
      return (src, dst, dstOff) => {
        const r = inflate(src, dst, dstOff);
        if (typeof r === 'number') return r;
        return r === 'too large' ? bigger(ps) : `is damaged (${r})`;
      };
    },
  };
}

async function loadZstd(): Promise<CodecImpl> {
  checkCodecRuns('zstd');
  // Loaded on first use: compiling the WebAssembly costs time and memory that -c, -l and -p runs do not need.
  const z = await import('./zstd.js');
  const lib = await z.loadZstd();
  return {
    compressor: (ps) => z.zstdCompressor(lib, ps, ZSTD_LEVEL),
    decompressor: (ps) => {
      const d = z.zstdDecompressor(lib, ps);
      return (src, dst, dstOff) => {
        const r = d(src, dst, dstOff);
        if (typeof r === 'number') return r;
        return /too small/i.test(r) ? bigger(ps) : `is damaged (${r})`;
      };
    },
  };
}

const ready = (impl: CodecImpl) => (): Promise<CodecImpl> => Promise.resolve(impl);

/** Every page codec, in flag order. */
export const PAGE_CODECS = [
  { name: 'zlib', flag: 0x01, macro: 'DUMP_DH_COMPRESSED_ZLIB', letter: 'c', long: 'zlib', threaded: true, wasmOnly: false, load: loadZlib },
  { name: 'lzo', flag: 0x02, macro: 'DUMP_DH_COMPRESSED_LZO', letter: 'l', long: 'lzo', threaded: false, wasmOnly: false, load: ready(lzo) },
  { name: 'snappy', flag: 0x04, macro: 'DUMP_DH_COMPRESSED_SNAPPY', letter: 'p', long: 'snappy', threaded: false, wasmOnly: false, load: ready(snappy) },
  { name: 'zstd', flag: 0x20, macro: 'DUMP_DH_COMPRESSED_ZSTD', letter: 'z', long: 'zstd', threaded: true, wasmOnly: true, load: loadZstd },
] as const satisfies readonly PageCodecSpec[];

export type PageCodecName = (typeof PAGE_CODECS)[number]['name'];
/** A page codec, or 'none' (pages stored raw). */
export type Codec = 'none' | PageCodecName;

/** Every codec name, 'none' first (analyze's columns). */
export const ALL_CODECS: readonly Codec[] = ['none', ...PAGE_CODECS.map((c) => c.name)];

/** Every compression bit. */
export const COMPRESSION_MASK = PAGE_CODECS.reduce((m, c) => m | c.flag, 0);

/** The entry of a codec name (undefined for 'none' and unknown names). */
export function codecSpec(name: string): (typeof PAGE_CODECS)[number] | undefined {
  return PAGE_CODECS.find((c) => c.name === name);
}

/**
 * Throw a UsageError when this node cannot run the codec: zstd is
 * WebAssembly, which node started with --jitless or --lite-mode does not
 * have. Called before a codec is loaded or its workers start, so that the
 * run ends in one line instead of a worker's crash.
 */
export function checkCodecRuns(name: string): void {
  const spec = codecSpec(name);
  if (spec?.wasmOnly && typeof (globalThis as { WebAssembly?: unknown }).WebAssembly !== 'object') {
    throw new UsageError(`${spec.name} pages need WebAssembly, which this node runs without (started with --jitless or --lite-mode?)`);
  }
}

/** page_desc.flags / status bit of a codec (0 for 'none'). */
export function codecFlag(codec: Codec): number {
  return codecSpec(codec)?.flag ?? 0;
}

/** The codec a page_desc.flags value names: 'none' for 0, undefined for anything but one known bit. */
export function codecOfFlags(flags: number): Codec | undefined {
  if (flags === 0) return 'none';
  return PAGE_CODECS.find((c) => c.flag === flags)?.name;
}

/** Load a codec's implementation (once per thread; later calls share it). */
const loaded = new Map<string, Promise<CodecImpl>>();
export function loadCodec(name: PageCodecName): Promise<CodecImpl> {
  let p = loaded.get(name);
  if (!p) {
    p = codecSpec(name)!.load();
    loaded.set(name, p);
  }
  return p;
}
