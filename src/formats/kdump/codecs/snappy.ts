/**
 * The raw Snappy block format in TypeScript: a compressor and a bounded
 * decompressor.
 *
 * The compressor makes the same choices as the Rust `snap` crate 1.x
 * (raw::Encoder, which the snappy npm package wraps), so its output is
 * byte for byte that crate's:
 *
 * - a varint of the input length, then blocks of at most 64 KiB, each
 *   compressed alone; a block under 17 bytes is one literal;
 * - a hash table of 256 up to 2^14 16-bit positions (the first power of
 *   two not below the block length), cleared per block; the slot of the
 *   4 bytes x (little-endian) is (x * 0x1e35a7bd mod 2^32) >> (32 - log2 size);
 * - matching starts at position 1, leaves the last 15 bytes to literals,
 *   and after misses steps 1 + (misses so far) / 32 bytes;
 * - after a copy the table learns positions s - 1 and s, and a hit at s
 *   goes straight into the next copy;
 * - copies are cut into 64-byte pieces (60 when 65–67 remain), the last
 *   one a 2-byte copy when it is 4–11 bytes long and at most 2047 back,
 *   else 3 bytes; literals of 1–60 bytes take one tag byte, longer ones 2 or 3.
 */

const MAX_BLOCK = 1 << 16;
const MAX_TABLE = 1 << 14;
const INPUT_MARGIN = 15;
const MIN_NON_LITERAL_BLOCK = 1 + 1 + INPUT_MARGIN;

/** Worst-case compressed size of `n` bytes (snap's max_compress_len). */
export function snappyBound(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

/** The 4 bytes at i, little-endian, as a signed 32-bit integer. */
function le32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/**
 * A Snappy compressor; keeps its hash table from call to call. The input
 * is read 4 bytes at a time through a DataView of its whole ArrayBuffer
 * (kept while pages come from the same buffer), at absolute offsets.
 */
export class SnappyCompressor {
  private readonly table = new Uint16Array(MAX_TABLE);
  private d = 0;
  private buffer: ArrayBufferLike | undefined;
  private view: DataView = new DataView(new ArrayBuffer(0));
  private bytes: Uint8Array = new Uint8Array(0);

  /** Compress src[0, length) into `out` (snappyBound(length) bytes); returns the stored size. */
  compress(src: Uint8Array, length: number, out: Uint8Array): number {
    if (length > src.length) throw new RangeError(`SnappyCompressor: ${length} bytes asked of ${src.length}`);
    if (src.buffer !== this.buffer) {
      this.buffer = src.buffer;
      this.view = new DataView(src.buffer);
      this.bytes = new Uint8Array(src.buffer);
    }
    let d = 0;
    let n = length;
    do {
      const b = n & 0x7f;
      n = Math.floor(n / 128);
      out[d++] = n > 0 ? b | 0x80 : b;
    } while (n > 0);
    this.d = d;
    const at = src.byteOffset;
    for (let start = 0; start < length; start += MAX_BLOCK) {
      const end = Math.min(length, start + MAX_BLOCK);
      if (end - start < MIN_NON_LITERAL_BLOCK) this.literal(this.bytes, at + start, at + end, out);
      else this.block(this.view, this.bytes, at + start, at + end, out);
    }
    return this.d;
  }

  /** One block [base, end) of the buffer (`dv` and `u8` view all of it). */
  private block(dv: DataView, u8: Uint8Array, base: number, end: number, out: Uint8Array): void {
    const len = end - base;
    let shift = 24;
    let size = 256;
    while (size < MAX_TABLE && size < len) {
      shift--;
      size *= 2;
    }
    const table = this.table;
    table.fill(0, 0, size);
    const sLimit = len - INPUT_MARGIN;
    let nextEmit = 0;
    let s = 1;
    let nextHash = Math.imul(dv.getInt32(base + s, true), 0x1e35a7bd) >>> shift;
    for (;;) {
      let skip = 32;
      let sNext = s;
      let candidate = 0;
      for (;;) {
        s = sNext;
        const step = skip >> 5;
        sNext = s + step;
        skip += step;
        if (sNext > sLimit) {
          if (nextEmit < len) this.literal(u8, base + nextEmit, end, out);
          return;
        }
        candidate = table[nextHash]!;
        table[nextHash] = s;
        nextHash = Math.imul(dv.getInt32(base + sNext, true), 0x1e35a7bd) >>> shift;
        if (dv.getInt32(base + s, true) === dv.getInt32(base + candidate, true)) break;
      }
      this.literal(u8, base + nextEmit, base + s, out);
      for (;;) {
        const start = s;
        s += 4;
        let c = candidate + 4;
        while (s + 4 <= len && dv.getInt32(base + s, true) === dv.getInt32(base + c, true)) {
          s += 4;
          c += 4;
        }
        while (s < len && u8[base + s] === u8[base + c]) {
          s++;
          c++;
        }
        this.copy(start - candidate, s - start, out);
        nextEmit = s;
        if (s >= sLimit) {
          if (nextEmit < len) this.literal(u8, base + nextEmit, end, out);
          return;
        }
        table[Math.imul(dv.getInt32(base + s - 1, true), 0x1e35a7bd) >>> shift] = s - 1;
        const cur = dv.getInt32(base + s, true);
        const h = Math.imul(cur, 0x1e35a7bd) >>> shift;
        candidate = table[h]!;
        table[h] = s;
        if (cur !== dv.getInt32(base + candidate, true)) {
          nextHash = Math.imul(dv.getInt32(base + s + 1, true), 0x1e35a7bd) >>> shift;
          s++;
          break;
        }
      }
    }
  }

  private literal(src: Uint8Array, from: number, to: number, out: Uint8Array): void {
    let d = this.d;
    const n = to - from - 1;
    if (n <= 59) out[d++] = n << 2;
    else if (n < 256) {
      out[d++] = 60 << 2;
      out[d++] = n;
    } else {
      out[d++] = 61 << 2;
      out[d++] = n & 0xff;
      out[d++] = n >>> 8;
    }
    const len = to - from;
    if (len < 32) for (let k = 0; k < len; k++) out[d + k] = src[from + k]!;
    else out.set(src.subarray(from, to), d);
    this.d = d + len;
  }

  private copy(offset: number, len: number, out: Uint8Array): void {
    let d = this.d;
    while (len >= 68) {
      d = copy2(out, d, offset, 64);
      len -= 64;
    }
    if (len > 64) {
      d = copy2(out, d, offset, 60);
      len -= 60;
    }
    if (len <= 11 && offset <= 2047) {
      out[d++] = ((offset >>> 8) << 5) | ((len - 4) << 2) | 1;
      out[d++] = offset & 0xff;
    } else d = copy2(out, d, offset, len);
    this.d = d;
  }
}

/** A 3-byte copy (1-64 bytes, 16-bit offset) at out[d]; returns the new end. */
function copy2(out: Uint8Array, d: number, offset: number, len: number): number {
  out[d] = ((len - 1) << 2) | 2;
  out[d + 1] = offset & 0xff;
  out[d + 2] = offset >>> 8;
  return d + 3;
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

/**
 * Decode a raw Snappy block into dst[dstOff, dstOff + declared length),
 * which must not exceed `limit`. Returns the bytes produced or what is
 * wrong; never reads or writes out of bounds.
 */
export function snappyDecompress(src: Uint8Array, dst: Uint8Array, dstOff: number, limit: number): number | string {
  const declared = snappyLength(src);
  if (declared === undefined) return 'no valid length preamble';
  if (declared > limit) return `declares ${declared} bytes, more than ${limit}`;
  let ip = 0;
  while (src[ip]! & 0x80) ip++;
  ip++;
  const end = dstOff + declared;
  let op = dstOff;
  while (ip < src.length) {
    const tag = src[ip++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >>> 2;
      if (n >= 60) {
        const bytes = n - 59;
        if (ip + bytes > src.length) return 'literal length runs past the end';
        n = 0;
        for (let k = 0; k < bytes; k++) n += src[ip + k]! * 2 ** (8 * k);
        ip += bytes;
      }
      n += 1;
      if (ip + n > src.length) return 'literal runs past the end of the input';
      if (op + n > end) return 'literal runs past the declared length';
      if (n < 32) for (let k = 0; k < n; k++) dst[op++] = src[ip++]!;
      else {
        dst.set(src.subarray(ip, ip + n), op);
        ip += n;
        op += n;
      }
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      if (ip >= src.length) return 'copy runs past the end of the input';
      n = 4 + ((tag >>> 2) & 7);
      offset = ((tag >>> 5) << 8) | src[ip++]!;
    } else if (kind === 2) {
      if (ip + 2 > src.length) return 'copy runs past the end of the input';
      n = (tag >>> 2) + 1;
      offset = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
    } else {
      if (ip + 4 > src.length) return 'copy runs past the end of the input';
      n = (tag >>> 2) + 1;
      offset = le32(src, ip) >>> 0;
      ip += 4;
    }
    if (offset === 0 || offset > op - dstOff) return `copy offset ${offset} is outside the output`;
    if (op + n > end) return 'copy runs past the declared length';
    const m = op - offset;
    if (offset >= n && n >= 32) {
      dst.copyWithin(op, m, m + n);
      op += n;
    } else for (let k = m, e = op + n; op < e; ) dst[op++] = dst[k++]!;
  }
  if (op !== end) return `inflates to ${op - dstOff} bytes, not the declared ${declared}`;
  return declared;
}
