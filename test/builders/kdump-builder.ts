/**
 * A dumb kdump-compressed file builder for fixtures, independent of the
 * production writer and codecs module: header fields written by hand at
 * their C offsets (diskdump_mod.h, LP64), every size overridable to make
 * hostile files. Pages are compressed by zlib and the zstd library
 * directly, and by deliberately simple LZO1X and Snappy encoders of its
 * own (other choices than the production encoders make, in the same
 * formats), so the reader's decoders meet streams they did not write.
 */
import { deflateSync } from 'node:zlib';
import { Zstd } from '@hpcc-js/wasm-zstd';
import { noteBytes, taggedPage } from './elf-builder.js';

const zstd = await Zstd.load();

/** Append a long length: a 0 byte per 255, then the rest (LZO1X). */
function pushLong(out: number[], n: number): void {
  while (n > 255) {
    out.push(0);
    n -= 255;
  }
  out.push(n);
}

/**
 * LZO1X by the plainest rules: literal runs, and M3 matches (3–264 bytes,
 * at most 16 KiB back) found through a table of the last position of each
 * 4-byte value; 1–3 literals after a match ride in its state bits; the
 * stream ends with the M4 end marker.
 */
export function lzoEncodeSimple(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  const last = new Map<number, number>();
  const n = src.length;
  let lit = 0;
  let first = true;
  let stateAt = -1;
  const flush = (end: number): void => {
    const len = end - lit;
    if (len === 0) return;
    if (first) {
      if (len <= 238) out.push(17 + len);
      else {
        out.push(0);
        pushLong(out, len - 18);
      }
    } else if (len <= 3) out[stateAt]! |= len;
    else if (len <= 18) out.push(len - 3);
    else {
      out.push(0);
      pushLong(out, len - 18);
    }
    for (let k = lit; k < end; k++) out.push(src[k]!);
    first = false;
  };
  let i = 0;
  while (i + 4 <= n) {
    const key = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24);
    const cand = last.get(key);
    last.set(key, i);
    if (cand === undefined || i - cand > 0x4000) {
      i++;
      continue;
    }
    let len = 4;
    while (i + len < n && len < 264 && src[cand + len] === src[i + len]) len++;
    flush(i);
    if (len <= 33) out.push(32 | (len - 2));
    else {
      out.push(32);
      pushLong(out, len - 33);
    }
    const d = i - cand - 1;
    out.push((d & 63) << 2, d >> 6);
    stateAt = out.length - 2;
    first = false;
    i += len;
    lit = i;
  }
  flush(n);
  out.push(17, 0, 0);
  return Uint8Array.from(out);
}

/**
 * Raw Snappy by the plainest rules: the length varint, literals, and
 * 3-byte copies (4–64 bytes, 16-bit offsets) found through a table of the
 * last position of each 4-byte value.
 */
export function snappyEncodeSimple(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let v = src.length; ; ) {
    if (v < 0x80) {
      out.push(v);
      break;
    }
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  const last = new Map<number, number>();
  const n = src.length;
  let lit = 0;
  const literal = (end: number): void => {
    const len = end - lit;
    if (len === 0) return;
    const m = len - 1;
    if (m < 60) out.push(m << 2);
    else if (m < 256) out.push(60 << 2, m);
    else out.push(61 << 2, m & 0xff, m >> 8);
    for (let k = lit; k < end; k++) out.push(src[k]!);
  };
  let i = 0;
  while (i + 4 <= n) {
    const key = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24);
    const cand = last.get(key);
    last.set(key, i);
    if (cand === undefined || i - cand > 0xffff) {
      i++;
      continue;
    }
    let len = 4;
    while (i + len < n && len < 64 && src[cand + len] === src[i + len]) len++;
    literal(i);
    const off = i - cand;
    out.push(((len - 1) << 2) | 2, off & 0xff, off >> 8);
    i += len;
    lit = i;
  }
  literal(n);
  return Uint8Array.from(out);
}

export type BuilderCodec = 'none' | 'zlib' | 'lzo' | 'snappy' | 'zstd';
export const FLAG: Record<BuilderCodec, number> = { none: 0, zlib: 1, lzo: 2, snappy: 4, zstd: 0x20 };

export interface KdumpPageSpec {
  pfn: number;
  /** Page content; default taggedPage(pfn). */
  data?: Uint8Array;
  /** Default: the file's codec. */
  codec?: BuilderCodec;
  /** Point the descriptor at the shared zero page (written first in the data area). */
  sharedZero?: boolean;
  /** Store these bytes instead of the (compressed) page; `flags` then says how. */
  stored?: Uint8Array;
  /** Descriptor overrides (after layout). */
  desc?: { offset?: number; size?: number; flags?: number };
}

export interface KdumpSpec {
  signature?: string;
  headerVersion?: number;
  blockSize?: number;
  maxPfn: number;
  /** 1st-bitmap (RAM) ranges [start, end); default: the dumped pfns. */
  ram?: Array<[number, number]>;
  pages: KdumpPageSpec[];
  codec?: BuilderCodec;
  utsname?: Partial<Record<'sysname' | 'nodename' | 'release' | 'version' | 'machine' | 'domainname', string>>;
  /** Raw ELF notes copied after the sub header (header_version >= 4). */
  notes?: Uint8Array;
  /**
   * VMCOREINFO text. v>=4: made into the notes when `notes` is not given
   * (offset_vmcoreinfo points at the note's descriptor); v3: a blob after
   * the sub header.
   */
  vmcoreinfo?: string;
  status?: number;
  dumpLevel?: number;
  split?: number;
  /**
   * Make one part of a split set, as makedumpfile --split writes it: the
   * whole bitmaps, `split` = 1 and the range in start_pfn(_64)/end_pfn(_64),
   * the descriptor table starting where a whole dump's does but listing
   * only the range's pages, their data after room for every page's
   * descriptor (the shared zero page first, as in every part).
   */
  part?: { start: number; end: number };
  /** eraseinfo text after the page data (header_version >= 5). */
  eraseinfo?: string;
  nrCpus?: number;
  physBase?: number;
  timestamp?: number;
  /** One bitmap only (dumped), as old diskdump files. */
  singleBitmap?: boolean;
  /** Raw field overrides, written last. */
  header?: Partial<{
    blockSize: number;
    subHdrSize: number;
    bitmapBlocks: number;
    maxMapnr: number;
    maxMapnr64: number;
    offsetNote: number;
    sizeNote: number;
    offsetVmcoreinfo: number;
    sizeVmcoreinfo: number;
  }>;
  truncateTo?: number;
}

/**
 * Decode an LZO1X stream, the format read straight from its definition
 * (no bounds beyond JavaScript's own): for tests that check stored pages
 * without the production decoder.
 */
export function lzoDecodeSimple(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  let ip = 0;
  const long = (base: number): number => {
    let n = base;
    while (src[ip] === 0) {
      n += 255;
      ip++;
    }
    return n + src[ip++]!;
  };
  const lits = (k: number): void => {
    for (let j = 0; j < k; j++) out.push(src[ip++]!);
  };
  const copy = (back: number, k: number): void => {
    if (back < 1 || back > out.length) throw new Error(`lzo: distance ${back} with ${out.length} bytes out`);
    for (let j = 0; j < k; j++) out.push(out[out.length - back]!);
  };
  // What an instruction byte below 16 means: 0 after a match without trailing literals or at the start.
  let after: 'match' | 'run' | 'tail' = 'match';
  if (src[0]! > 17) {
    const t = src[ip++]! - 17;
    lits(t);
    after = t < 4 ? 'tail' : 'run';
  }
  for (;;) {
    const t = src[ip++]!;
    if (t === undefined) throw new Error('lzo: no end marker');
    if (t < 16 && after === 'match') {
      lits((t === 0 ? long(15) : t) + 3);
      after = 'run';
      continue;
    }
    if (t < 16) copy((after === 'run' ? 0x801 : 1) + (t >> 2) + (src[ip++]! << 2), after === 'run' ? 3 : 2);
    else if (t >= 64) copy(1 + ((t >> 2) & 7) + (src[ip++]! << 3), (t >> 5) + 1);
    else if (t >= 32) {
      const k = (t & 31 ? t & 31 : long(31)) + 2;
      const back = 1 + (src[ip]! >> 2) + (src[ip + 1]! << 6);
      ip += 2;
      copy(back, k);
    } else {
      const k = (t & 7 ? t & 7 : long(7)) + 2;
      const back = ((t & 8) << 11) + (src[ip]! >> 2) + (src[ip + 1]! << 6);
      ip += 2;
      if (back === 0) {
        if (ip !== src.length) throw new Error('lzo: bytes after the end marker');
        return Uint8Array.from(out);
      }
      copy(back + 0x4000, k);
    }
    const tail = src[ip - 2]! & 3;
    lits(tail);
    after = tail ? 'tail' : 'match';
  }
}

/** Decode a raw Snappy block, read straight from the format's definition. */
export function snappyDecodeSimple(src: Uint8Array): Uint8Array {
  let ip = 0;
  let len = 0;
  for (let shift = 1; ; shift *= 128) {
    const b = src[ip++]!;
    len += (b & 0x7f) * shift;
    if (b < 0x80) break;
  }
  const out: number[] = [];
  while (ip < src.length) {
    const tag = src[ip++]!;
    if ((tag & 3) === 0) {
      let k = tag >> 2;
      if (k >= 60) {
        const bytes = k - 59;
        k = 0;
        for (let j = 0; j < bytes; j++) k += src[ip++]! * 256 ** j;
      }
      for (let j = 0; j <= k; j++) out.push(src[ip++]!);
      continue;
    }
    let k: number;
    let back: number;
    if ((tag & 3) === 1) {
      k = 4 + ((tag >> 2) & 7);
      back = ((tag >> 5) << 8) | src[ip++]!;
    } else if ((tag & 3) === 2) {
      k = (tag >> 2) + 1;
      back = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
    } else {
      k = (tag >> 2) + 1;
      back = (src[ip]! | (src[ip + 1]! << 8) | (src[ip + 2]! << 16) | (src[ip + 3]! << 24)) >>> 0;
      ip += 4;
    }
    if (back < 1 || back > out.length) throw new Error(`snappy: offset ${back} with ${out.length} bytes out`);
    for (let j = 0; j < k; j++) out.push(out[out.length - back]!);
  }
  if (out.length !== len) throw new Error(`snappy: ${out.length} bytes, declared ${len}`);
  return Uint8Array.from(out);
}

export function compressWith(codec: BuilderCodec, page: Uint8Array): Uint8Array {
  const b = Buffer.from(page);
  switch (codec) {
    case 'none':
      return b;
    case 'zlib':
      return deflateSync(b);
    case 'lzo':
      return lzoEncodeSimple(b);
    case 'snappy':
      return snappyEncodeSimple(b);
    case 'zstd':
      return zstd.compress(b, 3);
  }
}

function findVmcoreinfoDesc(notes: Uint8Array): { off: number; size: number } | undefined {
  const b = Buffer.from(notes.buffer, notes.byteOffset, notes.byteLength);
  let off = 0;
  while (off + 12 <= b.length) {
    const namesz = b.readUInt32LE(off);
    const descsz = b.readUInt32LE(off + 4);
    const name = b.toString('latin1', off + 12, off + 12 + namesz).replace(/\0+$/, '');
    const desc = off + 12 + ((namesz + 3) & ~3);
    if (name === 'VMCOREINFO') return { off: desc, size: descsz };
    if (namesz === 0 && descsz === 0) break;
    off = desc + ((descsz + 3) & ~3);
  }
  return undefined;
}

/** The notes a spec puts after the sub header: its own, or a VMCOREINFO note made from `vmcoreinfo`. */
function notesOf(spec: KdumpSpec, version: number): Uint8Array {
  if (version < 4) return new Uint8Array(0);
  if (spec.notes) return spec.notes;
  if (spec.vmcoreinfo !== undefined) return noteBytes([{ name: 'VMCOREINFO', type: 0, desc: Buffer.from(spec.vmcoreinfo, 'latin1') }]);
  return new Uint8Array(0);
}

export function buildKdump(spec: KdumpSpec): Uint8Array {
  const bs = spec.blockSize ?? 4096;
  const version = spec.headerVersion ?? 6;
  const maxPfn = spec.maxPfn;
  const pages = [...spec.pages].sort((a, b) => a.pfn - b.pfn);
  const notes = notesOf(spec, version);
  const blob = version === 3 && spec.vmcoreinfo !== undefined ? Buffer.from(spec.vmcoreinfo, 'latin1') : new Uint8Array(0);
  const subHdrBlocks = Math.ceil((104 + notes.length + blob.length) / bs);
  const bitmapEach = Math.ceil(Math.ceil(maxPfn / 8) / bs) * bs;
  const bitmapBytes = spec.singleBitmap ? bitmapEach : 2 * bitmapEach;
  const bm1 = (1 + subHdrBlocks) * bs;
  const bm2 = spec.singleBitmap ? bm1 : bm1 + bitmapEach;
  const descOff = bm1 + bitmapBytes;
  let dataPos = descOff + pages.length * 24;
  const inPart = (pfn: number): boolean => !spec.part || (pfn >= spec.part.start && pfn < spec.part.end);

  // Page data.
  const anyZero = pages.some((p) => p.sharedZero);
  const zeroOffset = anyZero ? dataPos : -1;
  const chunks: Uint8Array[] = [];
  if (anyZero) {
    chunks.push(new Uint8Array(bs));
    dataPos += bs;
  }
  const descs: Array<{ offset: number; size: number; flags: number }> = [];
  for (const p of pages) {
    if (!inPart(p.pfn)) continue;
    if (p.sharedZero) {
      descs.push({ offset: zeroOffset, size: bs, flags: 0, ...p.desc });
      continue;
    }
    const codec = p.codec ?? spec.codec ?? 'none';
    const page = p.data ?? taggedPage(p.pfn, 0xa5, bs);
    let stored: Uint8Array;
    let flags: number;
    if (p.stored) {
      stored = p.stored;
      flags = p.desc?.flags ?? FLAG[codec];
    } else {
      const c = compressWith(codec, page);
      if (codec !== 'none' && c.length < bs) {
        stored = c;
        flags = FLAG[codec];
      } else {
        stored = page;
        flags = 0;
      }
    }
    descs.push({ offset: dataPos, size: stored.length, flags, ...p.desc });
    chunks.push(stored);
    dataPos += stored.length;
  }

  const erase = spec.eraseinfo !== undefined && version >= 5 ? Buffer.from(spec.eraseinfo, 'latin1') : undefined;
  const eraseAt = dataPos;
  if (erase) dataPos += erase.length;
  const out = Buffer.alloc(dataPos);
  if (erase) out.set(erase, eraseAt);
  // disk_dump_header
  out.write((spec.signature ?? 'KDUMP   ').padEnd(8, ' '), 0, 'latin1');
  out.writeInt32LE(version, 8);
  const uts = { sysname: 'Linux', nodename: 'builder', release: '6.1.0-test', version: '#1 SMP', machine: 'x86_64', domainname: '(none)', ...spec.utsname };
  [uts.sysname, uts.nodename, uts.release, uts.version, uts.machine, uts.domainname].forEach((s, i) => out.write(s, 12 + i * 65, 'latin1'));
  out.writeBigInt64LE(BigInt(spec.timestamp ?? 1700000000), 408);
  out.writeUInt32LE(spec.status ?? (spec.codec ? FLAG[spec.codec] : 0), 424);
  out.writeInt32LE(spec.header?.blockSize ?? bs, 428);
  out.writeInt32LE(spec.header?.subHdrSize ?? subHdrBlocks, 432);
  out.writeUInt32LE(spec.header?.bitmapBlocks ?? bitmapBytes / bs, 436);
  out.writeUInt32LE(spec.header?.maxMapnr ?? Math.min(maxPfn, 0xffffffff), 440);
  out.writeInt32LE(spec.nrCpus ?? 1, 460);
  // kdump_sub_header (fields of later versions stay zero)
  if (version >= 1) {
    const s = bs;
    out.writeBigUInt64LE(BigInt(spec.physBase ?? 0), s);
    out.writeInt32LE(spec.dumpLevel ?? 0, s + 8);
    if (version >= 2) out.writeInt32LE(spec.split ?? (spec.part ? 1 : 0), s + 12);
    if (spec.part && version >= 2) {
      out.writeBigUInt64LE(BigInt(spec.part.start), s + 16);
      out.writeBigUInt64LE(BigInt(spec.part.end), s + 24);
      if (version >= 6) {
        out.writeBigUInt64LE(BigInt(spec.part.start), s + 80);
        out.writeBigUInt64LE(BigInt(spec.part.end), s + 88);
      }
    }
    if (erase && version >= 5) {
      out.writeBigUInt64LE(BigInt(eraseAt), s + 64);
      out.writeBigUInt64LE(BigInt(erase.length), s + 72);
    }
    if (version >= 3) {
      let vOff = 0;
      let vSize = 0;
      if (version === 3 && blob.length) {
        vOff = s + 104;
        vSize = blob.length;
        out.set(blob, vOff);
      } else if (version >= 4) {
        const d = findVmcoreinfoDesc(notes);
        if (d) {
          vOff = s + 104 + d.off;
          vSize = d.size;
        }
      }
      out.writeBigUInt64LE(BigInt(spec.header?.offsetVmcoreinfo ?? vOff), s + 32);
      out.writeBigUInt64LE(BigInt(spec.header?.sizeVmcoreinfo ?? vSize), s + 40);
    }
    if (version >= 4) {
      out.writeBigUInt64LE(BigInt(spec.header?.offsetNote ?? (notes.length ? s + 104 : 0)), s + 48);
      out.writeBigUInt64LE(BigInt(spec.header?.sizeNote ?? notes.length), s + 56);
      out.set(notes, s + 104);
    }
    if (version >= 6) out.writeBigUInt64LE(BigInt(spec.header?.maxMapnr64 ?? maxPfn), s + 96);
  }
  // bitmaps
  const setBit = (base: number, pfn: number): void => {
    out[base + (pfn >> 3)]! |= 1 << (pfn & 7);
  };
  if (!spec.singleBitmap) {
    if (spec.ram) for (const [a, b] of spec.ram) for (let p = a; p < b; p++) setBit(bm1, p);
    else for (const p of pages) setBit(bm1, p.pfn);
  }
  for (const p of pages) setBit(bm2, p.pfn);
  // descriptors
  descs.forEach((d, i) => {
    const o = descOff + i * 24;
    out.writeBigInt64LE(BigInt(d.offset), o);
    out.writeUInt32LE(d.size, o + 8);
    out.writeUInt32LE(d.flags, o + 12);
  });
  // data
  let pos = descOff + pages.length * 24;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return spec.truncateTo !== undefined ? out.subarray(0, spec.truncateTo) : out;
}

/** Where things are in a file built from `spec` (for tests that aim at offsets). */
export function kdumpOffsets(spec: KdumpSpec): { bs: number; bm1: number; bm2: number; descOff: number; dataStart: number } {
  const bs = spec.blockSize ?? 4096;
  const version = spec.headerVersion ?? 6;
  const notes = notesOf(spec, version);
  const blob = version === 3 && spec.vmcoreinfo !== undefined ? Buffer.byteLength(spec.vmcoreinfo, 'latin1') : 0;
  const sub = Math.ceil((104 + notes.length + blob) / bs);
  const each = Math.ceil(Math.ceil(spec.maxPfn / 8) / bs) * bs;
  const bm1 = (1 + sub) * bs;
  const bm2 = spec.singleBitmap ? bm1 : bm1 + each;
  const descOff = bm1 + (spec.singleBitmap ? each : 2 * each);
  return { bs, bm1, bm2, descOff, dataStart: descOff + spec.pages.length * 24 };
}
