/**
 * LZO1X in TypeScript: the LZO1X-1 compressor and a bounded decompressor.
 *
 * The compressor makes the same choices as liblzo2's lzo1x_1_compress()
 * (lzo 2.09/2.10, minilzo alike) built for a 64-bit little-endian machine
 * with unaligned access, which is what makedumpfile -l and the lzo npm
 * add-on run on x86_64 and arm64, so its output is byte for byte theirs:
 *
 * - the input is cut into blocks of at most 49152 bytes, each with a
 *   cleared dictionary of 2^14 16-bit positions (LZO_DETERMINISTIC);
 * - the dictionary slot of position p is the top 14 bits of
 *   0x1824429d * (the 4 bytes at p, little-endian), mod 2^32;
 * - the first lookup of a block is at 5 - (pending literals, at most 4),
 *   and after a miss the next is 1 + (literals so far) / 32 bytes on;
 * - a match found is extended 8 bytes at a time, and the extension stops
 *   after the first whole 8 bytes that reach 20 bytes before the block end
 *   (so a match there may end before the data stops matching);
 * - a match of at most 8 bytes at most 2 KiB back is an M2, at most 16 KiB
 *   back an M3, further an M4; pending literals go out before each match,
 *   1–3 of them in the low bits of the previous instruction.
 *
 * The stream format (decompressor) is LZO1X's: literal runs and M1–M4
 * matches, ended by the M4 with distance 0x4000 and length 3.
 */

/** Worst-case compressed size of `n` bytes (lzo's documented bound). */
export function lzoBound(n: number): number {
  return n + (n >>> 4) + 64 + 3;
}

const D_BITS = 14;
const BLOCK = 49152;
const M2_MAX_LEN = 8;
const M2_MAX_OFFSET = 0x0800;
const M3_MAX_LEN = 33;
const M3_MAX_OFFSET = 0x4000;
const M4_MAX_LEN = 9;
const M3_MARKER = 32;
const M4_MARKER = 16;

/** Write a literal or match length above the short range: a 0 byte per 255, then the rest. */
function putRun(out: Uint8Array, op: number, n: number): number {
  while (n > 255) {
    n -= 255;
    out[op++] = 0;
  }
  out[op++] = n;
  return op;
}

/**
 * An LZO1X-1 compressor. Keeps its dictionary (32 KiB) from call to call;
 * `compress` writes into `out`, which must hold lzoBound(length) bytes.
 *
 * Speed: the input is read 4 bytes at a time through a DataView of its
 * whole ArrayBuffer (kept while pages come from the same buffer, so no
 * object is made per page), at absolute offsets; the dictionary is
 * cleared with one fill per block, as liblzo2 clears it (a generation tag
 * per entry instead costs more than the fill on 4 KiB pages).
 */
export class Lzo1xCompressor {
  private readonly dict = new Uint16Array(1 << D_BITS);
  private op = 0;
  private buffer: ArrayBufferLike | undefined;
  private view: DataView = new DataView(new ArrayBuffer(0));
  private bytes: Uint8Array = new Uint8Array(0);

  compress(src: Uint8Array, length: number, out: Uint8Array): number {
    if (length > src.length) throw new RangeError(`Lzo1xCompressor: ${length} bytes asked of ${src.length}`);
    if (src.buffer !== this.buffer) {
      this.buffer = src.buffer;
      this.view = new DataView(src.buffer);
      this.bytes = new Uint8Array(src.buffer);
    }
    const at = src.byteOffset;
    this.op = 0;
    let ip = 0;
    let left = length;
    let t = 0;
    while (left > 20) {
      const ll = Math.min(left, BLOCK);
      this.dict.fill(0);
      t = this.block(this.view, this.bytes, at + ip, ll, out, t);
      ip += ll;
      left -= ll;
    }
    t += left;
    let op = this.op;
    if (t > 0) {
      const ii = length - t;
      if (op === 0 && t <= 238) out[op++] = 17 + t;
      else if (t <= 3) out[op - 2]! |= t;
      else if (t <= 18) out[op++] = t - 3;
      else {
        out[op++] = 0;
        op = putRun(out, op, t - 18);
      }
      for (let k = 0; k < t; k++) out[op + k] = src[ii + k]!;
      op += t;
    }
    out[op++] = M4_MARKER | 1;
    out[op++] = 0;
    out[op++] = 0;
    return op;
  }

  /**
   * One block [base, base + len) of the buffer (`dv` and `u8` view all of
   * it) with `ti` literals pending from the block before. Appends to out
   * at this.op; returns the literals left pending.
   */
  private block(dv: DataView, u8: Uint8Array, base: number, len: number, out: Uint8Array, ti: number): number {
    const dict = this.dict;
    const inEnd = base + len;
    const ipEnd = inEnd - 20;
    let op = this.op;
    let ii = base;
    let ip = base + (ti < 4 ? 4 - ti : 0);
    let miss = true;
    for (;;) {
      if (miss) ip += 1 + ((ip - ii) >> 5);
      miss = true;
      if (ip >= ipEnd) break;
      const dvv = dv.getInt32(ip, true);
      const slot = Math.imul(dvv, 0x1824429d) >>> (32 - D_BITS);
      const mPos = base + dict[slot]!;
      dict[slot] = ip - base;
      if (dvv !== dv.getInt32(mPos, true)) continue;

      // Pending literals, then the match.
      ii -= ti;
      ti = 0;
      const t = ip - ii;
      if (t !== 0) {
        if (t <= 3) out[op - 2]! |= t;
        else if (t <= 18) out[op++] = t - 3;
        else {
          out[op++] = 0;
          op = putRun(out, op, t - 18);
        }
        for (let k = 0; k < t; k++) out[op + k] = u8[ii + k]!;
        op += t;
      }
      // Extend the match 8 bytes at a time; stop after the first whole 8
      // that reach ipEnd (liblzo2's 64-bit loop, which may end a match early).
      let mLen = 4;
      let eq: number;
      for (;;) {
        const lo = dv.getInt32(ip + mLen, true) ^ dv.getInt32(mPos + mLen, true);
        if (lo !== 0) {
          eq = (31 - Math.clz32(lo & -lo)) >>> 3;
          break;
        }
        const hi = dv.getInt32(ip + mLen + 4, true) ^ dv.getInt32(mPos + mLen + 4, true);
        if (hi !== 0) {
          eq = 4 + ((31 - Math.clz32(hi & -hi)) >>> 3);
          break;
        }
        mLen += 8;
        if (ip + mLen >= ipEnd) {
          eq = 0;
          break;
        }
      }
      mLen += eq;
      let mOff = ip - mPos;
      ip += mLen;
      ii = ip;
      if (mLen <= M2_MAX_LEN && mOff <= M2_MAX_OFFSET) {
        mOff -= 1;
        out[op++] = ((mLen - 1) << 5) | ((mOff & 7) << 2);
        out[op++] = mOff >>> 3;
      } else if (mOff <= M3_MAX_OFFSET) {
        mOff -= 1;
        if (mLen <= M3_MAX_LEN) out[op++] = M3_MARKER | (mLen - 2);
        else {
          out[op++] = M3_MARKER;
          op = putRun(out, op, mLen - M3_MAX_LEN);
        }
        out[op++] = (mOff << 2) & 0xff;
        out[op++] = (mOff >>> 6) & 0xff;
      } else {
        mOff -= 0x4000;
        if (mLen <= M4_MAX_LEN) out[op++] = M4_MARKER | ((mOff >>> 11) & 8) | (mLen - 2);
        else {
          out[op++] = M4_MARKER | ((mOff >>> 11) & 8);
          op = putRun(out, op, mLen - M4_MAX_LEN);
        }
        out[op++] = (mOff << 2) & 0xff;
        out[op++] = (mOff >>> 6) & 0xff;
      }
      miss = false;
    }
    this.op = op;
    return inEnd - (ii - ti);
  }
}

/** What lzo1xDecompress found wrong (as lzo1x_decompress_safe classifies it). */
export type LzoProblem = 'input overrun' | 'output overrun' | 'lookbehind overrun' | 'input not consumed';

const INPUT_OVERRUN = -1;
const OUTPUT_OVERRUN = -2;
const LOOKBEHIND_OVERRUN = -3;
const NOT_CONSUMED = -4;
const PROBLEMS: Record<number, LzoProblem> = {
  [INPUT_OVERRUN]: 'input overrun',
  [OUTPUT_OVERRUN]: 'output overrun',
  [LOOKBEHIND_OVERRUN]: 'lookbehind overrun',
  [NOT_CONSUMED]: 'input not consumed',
};

/**
 * Decode an LZO1X stream `src` into dst[dstOff, dstOff + limit). Never
 * writes past the limit nor reads past the input; returns the number of
 * bytes produced, or the problem.
 */
export function lzo1xDecompress(src: Uint8Array, dst: Uint8Array, dstOff: number, limit: number): number | LzoProblem {
  const r = decode(src, dst, dstOff, dstOff + limit);
  return r >= 0 ? r - dstOff : PROBLEMS[r]!;
}

/** States between instructions: what an instruction byte below 16 means next. */
const AFTER_MATCH = 0; // a match with 0 trailing literals: a literal run
const AFTER_RUN = 1; // a literal run of 4 or more: a 3-byte match 2 KiB + back (M1)
const AFTER_TAIL = 2; // 1-3 trailing literals: a 2-byte match (M1)

/** The decoder proper: the end offset in dst, or a negative problem code. */
function decode(src: Uint8Array, dst: Uint8Array, dstOff: number, opEnd: number): number {
  const ipEnd = src.length;
  let ip = 0;
  let op = dstOff;
  let state = AFTER_MATCH;
  if (ipEnd < 1) return INPUT_OVERRUN;
  if (src[0]! > 17) {
    const t = src[ip++]! - 17;
    if (ip + t > ipEnd) return INPUT_OVERRUN;
    if (op + t > opEnd) return OUTPUT_OVERRUN;
    for (let k = 0; k < t; k++) dst[op++] = src[ip++]!;
    state = t < 4 ? AFTER_TAIL : AFTER_RUN;
  }
  for (;;) {
    if (ip >= ipEnd) return INPUT_OVERRUN;
    let t = src[ip++]!;
    let back: number;
    let n: number;
    if (t < 16) {
      if (state === AFTER_MATCH) {
        // Literal run of t + 3 bytes (t = 0: 18 + a long length).
        if (t === 0) {
          t = 15;
          while (ip < ipEnd && src[ip] === 0) {
            t += 255;
            ip++;
          }
          if (ip >= ipEnd) return INPUT_OVERRUN;
          t += src[ip++]!;
        }
        t += 3;
        if (ip + t > ipEnd) return INPUT_OVERRUN;
        if (op + t > opEnd) return OUTPUT_OVERRUN;
        if (t < 32) for (let k = 0; k < t; k++) dst[op++] = src[ip++]!;
        else {
          dst.set(src.subarray(ip, ip + t), op);
          ip += t;
          op += t;
        }
        state = AFTER_RUN;
        continue;
      }
      if (ip >= ipEnd) return INPUT_OVERRUN;
      back = (state === AFTER_RUN ? 1 + M2_MAX_OFFSET : 1) + (t >> 2) + (src[ip++]! << 2);
      n = state === AFTER_RUN ? 3 : 2;
    } else if (t >= 64) {
      if (ip >= ipEnd) return INPUT_OVERRUN;
      back = 1 + ((t >> 2) & 7) + (src[ip++]! << 3);
      n = (t >> 5) + 1;
    } else {
      // M3 (32-63) or M4 (16-31): a length, maybe long, then a 2-byte distance.
      const m4 = t < 32;
      n = t & (m4 ? 7 : 31);
      if (n === 0) {
        n = m4 ? 7 : 31;
        while (ip < ipEnd && src[ip] === 0) {
          n += 255;
          ip++;
        }
        if (ip >= ipEnd) return INPUT_OVERRUN;
        n += src[ip++]!;
      }
      n += 2;
      if (ip + 2 > ipEnd) return INPUT_OVERRUN;
      const d = (src[ip]! >> 2) + (src[ip + 1]! << 6);
      ip += 2;
      if (m4) {
        back = ((t & 8) << 11) + d;
        // The end marker: an M4 with distance 0.
        if (back === 0) return ip < ipEnd ? NOT_CONSUMED : op;
        back += 0x4000;
      } else back = 1 + d;
    }
    let m = op - back;
    if (m < dstOff) return LOOKBEHIND_OVERRUN;
    if (op + n > opEnd) return OUTPUT_OVERRUN;
    if (back >= n && n >= 32) {
      dst.copyWithin(op, m, m + n);
      op += n;
    } else for (const e = op + n; op < e; ) dst[op++] = dst[m++]!;
    // Trailing literals: the low 2 bits of the byte two back.
    const tail = src[ip - 2]! & 3;
    if (tail === 0) state = AFTER_MATCH;
    else {
      if (ip + tail > ipEnd) return INPUT_OVERRUN;
      if (op + tail > opEnd) return OUTPUT_OVERRUN;
      for (let k = 0; k < tail; k++) dst[op++] = src[ip++]!;
      state = AFTER_TAIL;
    }
  }
}
