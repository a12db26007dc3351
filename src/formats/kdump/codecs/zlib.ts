/**
 * zlib pages as makedumpfile stores them: one zlib stream per page,
 * compress2(..., Z_BEST_SPEED).
 *
 * node:zlib's deflateSync() builds a deflate state for every call and
 * frees it after: deflateInit2 allocates and clears some 260 KiB of
 * window, hash chains and pending buffer for a 4 KiB page. Measured on a
 * 4 KiB page of a synth guest, that set-up cost twice the compression
 * itself. makedumpfile's compress2 does the same, but in C the set-up is
 * cheap; here it is not.
 *
 * So one state is made per compressor and reset (deflateReset: the
 * window is kept, the stream starts afresh) between pages, which gives
 * the same bytes as a fresh state. node has no public synchronous call
 * on a kept state: the Deflate object's native handle is driven the way
 * node's own deflateSync drives it (writeSync with Z_FINISH, then the
 * handle's two-word state: output room left, input left). The handle's
 * shape is checked, and the first page of every compressor is compared
 * with deflateSync()'s output; on any difference, or a node without that
 * handle, every page goes through deflateSync() (slower, the same bytes).
 */
import { constants, createDeflate, deflateSync, inflateSync } from 'node:zlib';
import type { PageEncode } from './table.js';
import { checkedOnFirstPage } from './checked.js';

/** The native handle of a node:zlib Deflate object, as node's own deflateSync uses it. */
interface DeflateHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
}

interface DeflateInternals {
  _handle?: DeflateHandle;
  _writeState?: Uint32Array;
  reset(): void;
}

/** A compressor of `pageSize`-byte pages at `level` into zlib streams. */
export function zlibPageCompressor(pageSize: number, level: number): PageEncode {
  const slow: PageEncode = (page) => deflateSync(page, { level, chunkSize: pageSize });
  const d = createDeflate({ level }) as unknown as DeflateInternals;
  const handle = d._handle;
  const state = d._writeState;
  if (typeof handle?.writeSync !== 'function' || !(state instanceof Uint32Array) || state.length < 2) return slow;
  // deflateBound of a page is its size plus a few bytes a 16 KiB block; a page-sized margin is ample.
  const out = new Uint8Array(2 * pageSize + 64);
  const fast: PageEncode = (page) => {
    handle.writeSync(constants.Z_FINISH, page, 0, page.length, out, 0, out.length);
    const roomLeft = state[0]!;
    const inputLeft = state[1]!;
    d.reset();
    // Room left after Z_FINISH means deflate returned Z_STREAM_END: the stream is whole.
    if (inputLeft !== 0 || roomLeft === 0) return slow(page);
    return out.subarray(0, out.length - roomLeft);
  };
  return checkedOnFirstPage(fast, slow);
}

/**
 * A decoder of zlib pages into dst[dstOff, dstOff + pageSize): the bytes
 * produced, or 'too large' (the stream inflates past the page), or what
 * zlib found wrong.
 */
export function zlibPageDecompressor(pageSize: number): (src: Uint8Array, dst: Uint8Array, dstOff: number) => number | string {
  return (src, dst, dstOff) => {
    let out: Buffer;
    try {
      out = inflateSync(src, { maxOutputLength: pageSize });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return e.code === 'ERR_BUFFER_TOO_LARGE' ? 'too large' : e.message;
    }
    dst.set(out, dstOff);
    return out.length;
  };
}
