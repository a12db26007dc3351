/**
 * Zstandard through WebAssembly: zstd 1.5.7 compiled by @hpcc-js/wasm-zstd
 * (the library makedumpfile -z links, at the version the zstd-napi add-on
 * bundled), so a page compressed here at level 1 is byte for byte what
 * ZSTD_compressCCtx(cctx, ..., 1) writes natively: one frame with the
 * content size, no checksum.
 *
 * The package's public calls copy each buffer into and out of the module's
 * heap through fresh allocations; pages are compressed many thousand times
 * a second, so this uses the module's exported ZSTD_compress /
 * ZSTD_decompress on two heap buffers allocated once. Loading compiles the
 * module (about 70 ms, 12 MB): it happens only when a zstd page is first
 * written or read.
 */
import { Zstd } from '@hpcc-js/wasm-zstd';

/** The parts of the Emscripten module and its embind class used here. */
interface ZstdModule {
  HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
}
interface ZstdClass {
  compress(dst: number, dstCapacity: number, src: number, srcSize: number, level: number): number;
  decompress(dst: number, dstCapacity: number, src: number, srcSize: number): number;
  compressBound(size: number): number;
  isError(code: number): number;
  getErrorName(code: number): string;
  version(): string;
}
interface ZstdInternals {
  _mainModule?: { _module?: ZstdModule };
  _zstdClass?: ZstdClass;
}

/** The zstd library version the output is pinned to (see test/formats/kdump/codec-identity.test.ts). */
export const ZSTD_VERSION = '1.5.7';

export interface ZstdLib {
  mod: ZstdModule;
  z: ZstdClass;
}

let loading: Promise<ZstdLib> | undefined;

/** Compile and instantiate the module once per thread. */
export function loadZstd(): Promise<ZstdLib> {
  loading ??= Zstd.load().then((handle) => {
    const h = handle as unknown as ZstdInternals;
    const mod = h._mainModule?._module;
    const z = h._zstdClass;
    if (!mod || !z || typeof mod._malloc !== 'function' || typeof z.compress !== 'function' || typeof z.decompress !== 'function') {
      throw new Error('@hpcc-js/wasm-zstd: module layout not as expected (pin the version in package.json)');
    }
    if (z.version() !== ZSTD_VERSION) throw new Error(`@hpcc-js/wasm-zstd holds zstd ${z.version()}, not ${ZSTD_VERSION}: output would differ`);
    return { mod, z };
  });
  return loading;
}

/** Per-page zstd compression into a heap buffer; the result is valid until the next call. */
export function zstdCompressor(lib: ZstdLib, pageSize: number, level: number): (page: Uint8Array) => Uint8Array {
  const { mod, z } = lib;
  const cap = z.compressBound(pageSize);
  const src = mod._malloc(pageSize);
  const dst = mod._malloc(cap);
  return (page) => {
    mod.HEAPU8.set(page, src);
    const n = z.compress(dst, cap, src, page.length, level);
    if (z.isError(n)) throw new Error(`zstd: ${z.getErrorName(n)}`);
    return mod.HEAPU8.subarray(dst, dst + n);
  };
}

/**
 * Per-page zstd decompression bounded by the page size: returns the bytes
 * produced, or the library's error name ('Destination buffer is too small'
 * when the frame holds more than a page).
 */
export function zstdDecompressor(lib: ZstdLib, pageSize: number): (src: Uint8Array, dst: Uint8Array, dstOff: number) => number | string {
  const { mod, z } = lib;
  let inCap = pageSize;
  let inPtr = mod._malloc(inCap);
  const outPtr = mod._malloc(pageSize);
  return (src, dst, dstOff) => {
    if (src.length > inCap) {
      // Stored pages are at most a page (the reader checks); anything larger gets a larger buffer.
      mod._free(inPtr);
      inCap = src.length;
      inPtr = mod._malloc(inCap);
    }
    mod.HEAPU8.set(src, inPtr);
    const n = z.decompress(outPtr, pageSize, inPtr, src.length);
    if (z.isError(n)) return z.getErrorName(n);
    dst.set(mod.HEAPU8.subarray(outPtr, outPtr + n), dstOff);
    return n;
  };
}
