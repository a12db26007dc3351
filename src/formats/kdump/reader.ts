/**
 * kdump-compressed reader (signature `KDUMP   `, or `DISKDUMP`), header
 * versions 0–6 (later ones read as 6, with a warning), LP64 little-endian
 * (x86_64) as makedumpfile writes it; with `splitPart`, one part of a
 * split set (joined by split.ts).
 *
 * Streaming: opening reads the headers, the notes and the 2nd bitmap once,
 * sequentially, to build a compact rank index (set bits of the 2nd bitmap
 * before each chunk of it). Afterwards bitmap chunks and page descriptors
 * are read on demand through small caches, so memory does not grow with
 * the file: a pfn's descriptor is the one at its rank in the 2nd bitmap.
 *
 * Every header-derived size is checked before it is used; every failure is
 * a one-line DumpError naming the file and the offset of the bad value.
 */
import { DumpError, hex } from '../../core/errors.js';
import { formatRange } from '../../core/rangeset.js';
import { readExact, type ByteSource } from '../../io/source.js';
import { MAX_NOTES_BYTES, scanCoreNotes } from '../elf/reader.js';
import { VmcoreInfo, VMCOREINFO_MAX_BYTES } from '../vmcoreinfo.js';
import { PfnState, pfnSpanLimit, type DumpInfo, type DumpReader } from '../types.js';
import {
  DH_OFF,
  DISKDUMP_SIGNATURE,
  DISK_DUMP_HEADER_SIZE,
  DUMP_DH,
  KDUMP_HEADER_VERSION,
  KDUMP_SIGNATURE,
  KDUMP_SUB_HEADER_SIZE,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  KH_OFF,
  NEW_UTS_LEN,
  PAGE_DESC_SIZE,
  decodeDiskDumpHeader,
  decodeSubHeader,
  describeStatus,
  signatureOf,
  type DiskDumpHeader,
  type KdumpSubHeader,
} from './header.js';
import { COMPRESSION_MASK, PageDecompressor, codecOfFlags } from './codecs/index.js';

/** Physical address bits of x86_64 (5-level paging): max_mapnr is at most 2^52 / block size. */
const MAX_PHYS_BITS = 52;
/** Most rank-index entries (8 bytes each). */
const MAX_RANK_ENTRIES = 1 << 20;
/** Bitmap chunks kept per bitmap. */
const BITMAP_CACHE = 8;
/** Page descriptors per cached batch, and batches kept. */
const DESC_BATCH = 1024;
const DESC_CACHE = 4;
/** Decompressed pages kept for readPhys. */
const PAGE_CACHE = 64;
/** Pages per group in readPages, and bytes of stored data read at once. */
const READ_GROUP = 256;
const READ_SCRATCH = 1 << 20;
/** Bytes of bitmap read per request while building the rank index. */
const SCAN_READ = 1 << 20;

export interface KdumpReaderOptions {
  /**
   * Accept one part of a split set (makedumpfile --split): the reader then
   * serves the pages of its own pfn range only (`part`). Without it a part
   * is refused: it holds only some of the pages.
   */
  splitPart?: boolean;
  /**
   * Bytes of 2nd bitmap per rank-index entry: a power of two, at least 64.
   * Default: the block size, doubled until the index has at most 2^20 entries.
   */
  rankChunkBytes?: number;
}

const TWO32 = 0x1_0000_0000;
/** eraseinfo bytes shown by `info` at most. */
export const MAX_ERASEINFO_SHOWN = 64 << 10;

function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1]!;
  return t;
})();

function popcountBytes(b: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += POPCOUNT8[b[i]!]!;
  return n;
}

/**
 * A few buffers kept by key, the least recently used given back first:
 * `get` refreshes a hit; `recycle` takes the oldest entry's buffer out (or
 * makes a new one while there is room) for the caller to fill and `set`.
 */
class BufferCache<V> {
  private readonly map = new Map<number, V>();

  constructor(
    private readonly capacity: number,
    private readonly make: () => V,
  ) {}

  get(key: number): V | undefined {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.map.delete(key);
      this.map.set(key, hit);
    }
    return hit;
  }

  recycle(): V {
    if (this.map.size < this.capacity) return this.make();
    const oldest = this.map.keys().next().value as number;
    const v = this.map.get(oldest)!;
    this.map.delete(oldest);
    return v;
  }

  set(key: number, v: V): void {
    this.map.set(key, v);
  }
}

/**
 * One bitmap read in chunks of `chunkBytes`, a few kept. Bits at or past
 * `maxPfn` read as 0. For the 2nd bitmap each chunk carries per-64-byte
 * cumulative counts, so a rank costs at most 64 byte lookups.
 */
class BitmapChunks {
  private readonly cache = new BufferCache(BITMAP_CACHE, () => ({ bits: new Uint8Array(this.chunkBytes), sub: new Uint32Array(this.chunkBytes / 64 + 1) }));

  constructor(
    private readonly src: ByteSource,
    private readonly base: number,
    private readonly usedBytes: number,
    private readonly maxPfn: number,
    readonly chunkBytes: number,
    private readonly what: string,
  ) {}

  async get(c: number): Promise<{ bits: Uint8Array; sub: Uint32Array }> {
    const hit = this.cache.get(c);
    if (hit) return hit;
    const entry = this.cache.recycle();
    const G = this.chunkBytes;
    const start = c * G;
    const n = Math.min(G, this.usedBytes - start);
    const bits = entry.bits;
    await readExact(this.src, bits, 0, n, this.base + start, this.what);
    bits.fill(0, n);
    maskTail(bits, start, n, this.maxPfn);
    const sub = entry.sub;
    sub[0] = 0;
    for (let k = 0; k < G / 64; k++) sub[k + 1] = sub[k]! + popcountBytes(bits, k * 64, k * 64 + 64);
    this.cache.set(c, entry);
    return entry;
  }
}

/** Clear bits for pfns >= maxPfn in `bits` (holding bitmap bytes [start, start+n)). */
function maskTail(bits: Uint8Array, start: number, n: number, maxPfn: number): void {
  const endBit = maxPfn - start * 8;
  if (endBit >= n * 8) return;
  const full = endBit >> 3;
  if (endBit & 7) bits[full] = bits[full]! & ((1 << (endBit & 7)) - 1);
  bits.fill(0, full + ((endBit & 7) ? 1 : 0), n);
}

interface Desc {
  offset: number;
  size: number;
  flags: number;
}

export class KdumpReader implements DumpReader {
  readonly info: DumpInfo;
  private readonly src: ByteSource;
  private readonly file: string;
  private readonly bs: number;
  private readonly maxPfn: number;
  private readonly incomplete: boolean;
  private readonly descOff: number;
  private readonly descCount: number;
  private readonly statusCodecBits: number;
  private seenFlags = 0;
  /** Set bits of the 2nd bitmap before the part's first pfn (0 for a whole dump). */
  private readonly rankBase: number;
  /** The pfn range of a split part; undefined for a whole dump. */
  readonly part: { start: number; end: number } | undefined;
  /** The 464 bytes of disk_dump_header, as in the file. */
  readonly rawHeader: Uint8Array;
  readonly subHeader: KdumpSubHeader;
  /** Where the file's parts are (reassembly copies them as they are). */
  readonly layout: {
    blockSize: number;
    headerVersion: number;
    subHdrBlocks: number;
    bitmapBlocks: number;
    /** File offsets of the 1st and 2nd bitmap (equal for a single-bitmap file). */
    bm1Off: number;
    bm2Off: number;
    /** Offset of the page descriptor table and its entry count (this part's pages). */
    descOff: number;
    descCount: number;
  };
  // Rank index: set bits of the 2nd bitmap before chunk i.
  private readonly rank0: Float64Array;
  private readonly bm1: BitmapChunks;
  private readonly bm2: BitmapChunks;
  private readonly chunkPfns: number;
  // Descriptor batches.
  private readonly descCache = new BufferCache(DESC_CACHE, () => new Uint8Array(DESC_BATCH * PAGE_DESC_SIZE));
  // readPages scratch.
  private readonly groupDesc: Uint8Array;
  private readonly gOff = new Float64Array(READ_GROUP);
  private readonly gSize = new Uint32Array(READ_GROUP);
  private readonly gFlags = new Uint32Array(READ_GROUP);
  private readonly scratch: Uint8Array;
  private readonly decoder: PageDecompressor;
  // readPhys page cache.
  private readonly pages = new BufferCache(PAGE_CACHE, () => new Uint8Array(this.bs));

  private constructor(
    src: ByteSource,
    info: DumpInfo,
    p: {
      bs: number;
      maxPfn: number;
      incomplete: boolean;
      bm1Off: number;
      bm2Off: number;
      usedBytes: number;
      chunkBytes: number;
      rank0: Float64Array;
      descOff: number;
      descCount: number;
      statusCodecBits: number;
      rankBase: number;
      headerVersion: number;
      subHdrBlocks: number;
      bitmapBlocks: number;
      part: { start: number; end: number } | undefined;
      header: Uint8Array;
      subHeader: KdumpSubHeader;
    },
  ) {
    this.rankBase = p.rankBase;
    this.part = p.part;
    this.layout = {
      blockSize: p.bs,
      headerVersion: p.headerVersion,
      subHdrBlocks: p.subHdrBlocks,
      bitmapBlocks: p.bitmapBlocks,
      bm1Off: p.bm1Off,
      bm2Off: p.bm2Off,
      descOff: p.descOff,
      descCount: p.descCount,
    };
    this.rawHeader = p.header;
    this.subHeader = p.subHeader;
    this.src = src;
    this.info = info;
    this.file = src.name;
    this.bs = p.bs;
    this.maxPfn = p.maxPfn;
    this.incomplete = p.incomplete;
    this.descOff = p.descOff;
    this.descCount = p.descCount;
    this.statusCodecBits = p.statusCodecBits;
    this.rank0 = p.rank0;
    this.chunkPfns = p.chunkBytes * 8;
    this.bm2 = new BitmapChunks(src, p.bm2Off, p.usedBytes, p.maxPfn, p.chunkBytes, '2nd bitmap');
    this.bm1 = p.bm1Off === p.bm2Off ? this.bm2 : new BitmapChunks(src, p.bm1Off, p.usedBytes, p.maxPfn, p.chunkBytes, '1st bitmap');
    this.groupDesc = new Uint8Array(READ_GROUP * PAGE_DESC_SIZE);
    this.scratch = new Uint8Array(Math.max(READ_SCRATCH, p.bs));
    this.decoder = new PageDecompressor(p.bs);
  }

  static async open(src: ByteSource, opts: KdumpReaderOptions = {}): Promise<KdumpReader> {
    const file = src.name;
    const { head, sig, dh } = await readDiskDumpHeader(src);
    const warnings: string[] = [];
    const version = dh.headerVersion;
    if (version < 0) throw new DumpError('DUMP_CORRUPT', `header_version ${version} is negative`, { file, offset: DH_OFF.headerVersion });
    if (version > KDUMP_HEADER_VERSION) {
      // Every version so far only appended sub-header fields: read what
      // version 6 defines and say so.
      warnings.push(`header_version ${version} is newer than ${KDUMP_HEADER_VERSION}, the last one known: read as version ${KDUMP_HEADER_VERSION}`);
    }
    const bs = checkBlockSize(dh, head, file);
    const machine = dh.utsname.machine;
    if (machine !== '' && machine !== 'x86_64') {
      throw new DumpError('DUMP_UNSUPPORTED', `utsname.machine is '${machine}': only x86_64 dumps are supported`, { file, offset: DH_OFF.utsname + 4 * NEW_UTS_LEN });
    }
    const sh = await readSubHeader(src, dh, bs);
    const part = splitPart(src, dh, sh, bs, opts);
    const maxPfn = checkMaxPfn(src, dh, sh, bs, warnings);
    if (part && (part.start > part.end || part.end > maxPfn)) {
      throw new DumpError(
        'DUMP_CORRUPT',
        `split part covers pfns ${formatRange(part.start, part.end)}, not a range within max_mapnr ${hex(maxPfn)}`,
        { file, offset: bs + (version >= 6 ? KH_OFF.startPfn64 : KH_OFF.startPfn) },
      );
    }
    const bitmaps = bitmapLayout(src, dh, bs, maxPfn);
    const index = await indexBitmap(src, bitmaps, maxPfn, part, opts.rankChunkBytes ?? bs);
    const incomplete = (dh.status & DUMP_DH.COMPRESSED_INCOMPLETE) !== 0;
    const descEnd = bitmaps.descOff + index.descCount * PAGE_DESC_SIZE;
    if (descEnd > src.size && !incomplete) {
      throw new DumpError(
        'DUMP_TRUNCATED',
        `the page descriptor table (${index.descCount} entries, ${index.descCount * PAGE_DESC_SIZE} bytes) runs past the end of the file (${hex(src.size)})`,
        { file, offset: bitmaps.descOff },
      );
    }
    const notes = await readKdumpNotes(src, dh, sh, bs);
    const eraseinfo = await readEraseinfo(src, dh, sh, warnings);
    const statusCodecBits = dh.status & COMPRESSION_MASK;
    const info: DumpInfo = {
      format: 'kdump',
      file,
      fileSize: src.size,
      arch: 'x86_64',
      pageSize: bs,
      maxPfn,
      vmcoreinfo: notes.vmcoreinfo,
      notes: notes.bytes,
      cpus: notes.cpus > 0 ? notes.cpus : dh.nrCpus > 0 && dh.nrCpus <= 1 << 16 ? dh.nrCpus : 0,
      utsname: dh.utsname,
      dumpLevel: version >= 1 ? sh.dumpLevel : undefined,
      compression: compressionName(statusCodecBits),
      eraseinfo,
      warnings: warnings.length ? warnings : undefined,
      notesOffset: sh.offsetNote,
      details: describeKdump(sig, dh, sh, bitmaps.count, index.descCount, notes.from, part),
    };
    const reader = new KdumpReader(src, info, {
      bs,
      maxPfn,
      incomplete,
      bm1Off: bitmaps.bm1Off,
      bm2Off: bitmaps.bm2Off,
      usedBytes: bitmaps.usedBytes,
      chunkBytes: index.chunkBytes,
      rank0: index.rank0,
      descOff: bitmaps.descOff,
      descCount: index.descCount,
      statusCodecBits,
      rankBase: index.rankBase,
      headerVersion: version,
      subHdrBlocks: dh.subHdrSize,
      bitmapBlocks: dh.bitmapBlocks,
      part,
      header: head,
      subHeader: sh,
    });
    await reader.sampleCompression();
    return reader;
  }

  /** Look at the first descriptors to say which compression the pages use. */
  private async sampleCompression(): Promise<void> {
    const n = Math.min(DESC_BATCH, this.descCount);
    if (n === 0) return;
    const batch = await this.descBatch(0);
    const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    for (let i = 0; i < n; i++) this.seenFlags |= dv.getUint32(i * PAGE_DESC_SIZE + 12, true) & COMPRESSION_MASK;
    this.info.compression = compressionName(this.statusCodecBits | this.seenFlags);
  }

  private noteFlags(flags: number): void {
    if ((this.seenFlags | flags) !== this.seenFlags) {
      this.seenFlags |= flags & COMPRESSION_MASK;
      this.info.compression = compressionName(this.statusCodecBits | this.seenFlags);
    }
  }

  /**
   * Calls run one at a time: they share scratch buffers and caches, and an
   * await inside one must not let another reuse them.
   */
  private queue: Promise<unknown> = Promise.resolve();
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  pfnStates(start: number, count: number, out: Uint8Array): Promise<void> {
    return this.serial(() => this.pfnStatesNow(start, count, out));
  }

  readPages(pfn: number, count: number, into: Uint8Array, offset = 0): Promise<void> {
    return this.serial(() => this.readPagesNow(pfn, count, into, offset));
  }

  readPhys(paddr: number, length: number, into: Uint8Array, offset = 0): Promise<void> {
    return this.serial(() => this.readPhysNow(paddr, length, into, offset));
  }

  private async pfnStatesNow(start: number, count: number, out: Uint8Array): Promise<void> {
    out.fill(PfnState.HOLE, 0, count);
    const end = Math.min(start + count, this.maxPfn);
    let p = Math.max(0, start);
    while (p < end) {
      const c = Math.floor(p / this.chunkPfns);
      const cEnd = Math.min(end, (c + 1) * this.chunkPfns);
      const b1 = (await this.bm1.get(c)).bits;
      const b2 = (await this.bm2.get(c)).bits;
      const base = c * this.chunkPfns;
      while (p < cEnd) {
        const rel = p - base;
        const byte = rel >> 3;
        if ((rel & 7) === 0 && p + 8 <= cEnd && b1[byte] === 0 && b2[byte] === 0) {
          p += 8;
          continue;
        }
        const bit = 1 << (rel & 7);
        if (b2[byte]! & bit) out[p - start] = PfnState.PRESENT;
        else if (b1[byte]! & bit) out[p - start] = PfnState.ABSENT;
        p++;
      }
    }
  }

  /**
   * Index in this file's descriptor table of `pfn` (set bits of the 2nd
   * bitmap before it, from the part's first pfn), and whether its bit is set.
   */
  private async rankOf(pfn: number): Promise<{ rank: number; set: boolean }> {
    const c = Math.floor(pfn / this.chunkPfns);
    const { bits, sub } = await this.bm2.get(c);
    const rel = pfn - c * this.chunkPfns;
    const byte = rel >> 3;
    const blk = byte >> 6;
    let r = this.rank0[c]! - this.rankBase + sub[blk]! + popcountBytes(bits, blk * 64, byte);
    const b = bits[byte]!;
    r += POPCOUNT8[b & ((1 << (rel & 7)) - 1)]!;
    return { rank: r, set: (b & (1 << (rel & 7))) !== 0 };
  }

  /** The file the reader reads (reassembly copies stored pages from it). */
  get source(): ByteSource {
    return this.src;
  }

  /**
   * Read descriptors [index, index+n) of this file's table into `into`
   * (n * 24 bytes) and check each (offset, size, flags) as page reads do;
   * `pfnOf(i)` names the pfn of entry index+i for messages.
   */
  async readDescriptors(index: number, n: number, into: Uint8Array, pfnOf: (i: number) => number): Promise<void> {
    if (index < 0 || index + n > this.descCount) throw new RangeError(`descriptors ${index}+${n} beyond the table of ${this.descCount}`);
    const pos = this.descOff + index * PAGE_DESC_SIZE;
    await readExact(this.src, into, 0, n * PAGE_DESC_SIZE, pos, 'page descriptors');
    const dv = new DataView(into.buffer, into.byteOffset, n * PAGE_DESC_SIZE);
    for (let i = 0; i < n; i++) this.decodeDesc(dv, i * PAGE_DESC_SIZE, pfnOf(i), pos + i * PAGE_DESC_SIZE);
  }

  private otherPart(pfn: number): DumpError {
    return new DumpError('ADDRESS_UNMAPPED', `pfn ${hex(pfn)} is outside this split part (pfns ${formatRange(this.part!.start, this.part!.end)})`, { file: this.file });
  }

  private unmapped(pfn: number): DumpError {
    if (pfn < 0 || pfn >= this.maxPfn) {
      return new DumpError('ADDRESS_UNMAPPED', `pfn ${hex(pfn)} is beyond max_mapnr ${hex(this.maxPfn)}`, { file: this.file });
    }
    return new DumpError('ADDRESS_UNMAPPED', `pfn ${hex(pfn)} is not in the dump (excluded or not RAM)`, { file: this.file });
  }

  private async readPagesNow(pfn: number, count: number, into: Uint8Array, offset: number): Promise<void> {
    const bs = this.bs;
    if (count <= 0) return;
    if (into.length < offset + count * bs) throw new RangeError(`readPages: ${count} pages do not fit the buffer`);
    if (pfn < 0 || pfn + count > this.maxPfn) throw this.unmapped(pfn < 0 || pfn >= this.maxPfn ? pfn : this.maxPfn);
    if (this.part && (pfn < this.part.start || pfn + count > this.part.end)) throw this.otherPart(pfn < this.part.start ? pfn : this.part.end);
    let p = pfn;
    const end = pfn + count;
    while (p < end) {
      // A group: pfns within one bitmap chunk, at most READ_GROUP of them.
      const c = Math.floor(p / this.chunkPfns);
      const gEnd = Math.min(end, (c + 1) * this.chunkPfns, p + READ_GROUP);
      const { rank, set } = await this.rankOf(p);
      if (!set) throw this.unmapped(p);
      const { bits } = await this.bm2.get(c);
      const base = c * this.chunkPfns;
      for (let q = p + 1; q < gEnd; q++) {
        const rel = q - base;
        if (!(bits[rel >> 3]! & (1 << (rel & 7)))) throw this.unmapped(q);
      }
      const n = gEnd - p;
      await this.loadDescs(rank, n, p);
      await this.readGroup(p, n, into, offset + (p - pfn) * bs);
      p = gEnd;
    }
  }

  /** Descriptors of ranks [rank, rank+n) into gOff/gSize/gFlags, checked. */
  private async loadDescs(rank: number, n: number, firstPfn: number): Promise<void> {
    const buf = this.groupDesc;
    const pos = this.descOff + rank * PAGE_DESC_SIZE;
    const len = n * PAGE_DESC_SIZE;
    const avail = Math.max(0, Math.min(len, this.src.size - pos));
    if (avail > 0) await readExact(this.src, buf, 0, avail, pos, 'page descriptors');
    if (avail < len) {
      // Only possible for incomplete dumps: lost descriptors read as zeros.
      buf.fill(0, avail, len);
    }
    const dv = new DataView(buf.buffer, buf.byteOffset, len);
    for (let i = 0; i < n; i++) {
      const d = this.decodeDesc(dv, i * PAGE_DESC_SIZE, firstPfn + i, pos + i * PAGE_DESC_SIZE);
      this.gOff[i] = d.offset;
      this.gSize[i] = d.size;
      this.gFlags[i] = d.flags;
    }
  }

  private readonly tmpDesc: Desc = { offset: 0, size: 0, flags: 0 };

  private at(offset: number): { file: string; offset: number } {
    return { file: this.file, offset };
  }

  /** Decode and check the descriptor at `o` of `dv` (pfn `pfn`, at file offset `at`). */
  private decodeDesc(dv: DataView, o: number, pfn: number, at: number): Desc {
    const lo = dv.getUint32(o, true);
    const hi = dv.getUint32(o + 4, true);
    const size = dv.getUint32(o + 8, true);
    const flags = dv.getUint32(o + 12, true);
    if (hi >= 0x20_0000) throw new DumpError('DUMP_CORRUPT', `page descriptor of pfn ${hex(pfn)}: offset is beyond 2^53`, this.at(at));
    const offset = hi * TWO32 + lo;
    if (offset === 0) {
      throw new DumpError(
        'DUMP_TRUNCATED',
        `page descriptor of pfn ${hex(pfn)} is empty: the dump is incomplete (cut short while it was written${this.incomplete ? ', status flag 0x8' : ''})`,
        this.at(at),
      );
    }
    if (codecOfFlags(flags) === undefined) {
      throw new DumpError('DUMP_CORRUPT', `page descriptor of pfn ${hex(pfn)} has flags 0x${flags.toString(16)}, not one known compression`, this.at(at));
    }
    if (flags === 0) {
      if (size !== this.bs) throw new DumpError('DUMP_CORRUPT', `raw page of pfn ${hex(pfn)} is ${size} bytes, not the block size ${this.bs}`, this.at(at));
    } else if (size === 0 || size > this.bs) {
      throw new DumpError('DUMP_CORRUPT', `compressed page of pfn ${hex(pfn)} is ${size} bytes, larger than the block size ${this.bs}`, this.at(at));
    }
    if (offset + size > this.src.size) {
      throw new DumpError('DUMP_TRUNCATED', `data of pfn ${hex(pfn)} at ${hex(offset)} (${size} bytes) runs past the end of the file (${hex(this.src.size)})`, this.at(at));
    }
    if (flags !== 0) this.noteFlags(flags);
    const d = this.tmpDesc;
    d.offset = offset;
    d.size = size;
    d.flags = flags;
    return d;
  }

  /** Read and decode the n pages described in gOff/gSize/gFlags into `into` at `dst`. */
  private async readGroup(firstPfn: number, n: number, into: Uint8Array, dst: number): Promise<void> {
    const bs = this.bs;
    let i = 0;
    while (i < n) {
      // Same block as the page before (the shared zero page): copy.
      if (i > 0 && this.gOff[i] === this.gOff[i - 1] && this.gSize[i] === this.gSize[i - 1] && this.gFlags[i] === this.gFlags[i - 1]) {
        into.copyWithin(dst + i * bs, dst + (i - 1) * bs, dst + i * bs);
        i++;
        continue;
      }
      // Pages whose stored bytes follow each other: one read.
      let j = i + 1;
      let bytes = this.gSize[i]!;
      while (j < n && this.gOff[j] === this.gOff[j - 1]! + this.gSize[j - 1]! && bytes + this.gSize[j]! <= this.scratch.length) {
        bytes += this.gSize[j]!;
        j++;
      }
      const start = this.gOff[i]!;
      let allRaw = true;
      for (let k = i; k < j; k++) if (this.gFlags[k] !== 0) allRaw = false;
      if (allRaw) {
        await readExact(this.src, into, dst + i * bs, bytes, start, `data of pfn ${hex(firstPfn + i)}`);
      } else {
        await readExact(this.src, this.scratch, 0, bytes, start, `data of pfn ${hex(firstPfn + i)}`);
        let at = 0;
        for (let k = i; k < j; k++) {
          const size = this.gSize[k]!;
          if (!this.decoder.ready(this.gFlags[k]!)) await this.decoder.prepare(this.gFlags[k]!);
          const problem = this.decoder.decompress(this.gFlags[k]!, this.scratch.subarray(at, at + size), into, dst + k * bs);
          if (problem !== undefined) {
            throw new DumpError('DUMP_CORRUPT', `pfn ${hex(firstPfn + k)}: ${problem}`, { file: this.file, offset: this.gOff[k]! });
          }
          at += size;
        }
      }
      i = j;
    }
  }

  private async readPhysNow(paddr: number, length: number, into: Uint8Array, offset: number): Promise<void> {
    const bs = this.bs;
    let a = paddr;
    const end = paddr + length;
    while (a < end) {
      const pfn = Math.floor(a / bs);
      const inPage = a - pfn * bs;
      const n = Math.min(bs - inPage, end - a);
      const page = await this.cachedPage(pfn, a);
      into.set(page.subarray(inPage, inPage + n), offset + (a - paddr));
      a += n;
    }
  }

  private async cachedPage(pfn: number, paddr: number): Promise<Uint8Array> {
    const hit = this.pages.get(pfn);
    if (hit) return hit;
    if (pfn < 0 || pfn >= this.maxPfn) {
      throw new DumpError('ADDRESS_UNMAPPED', `physical address ${hex(paddr)} is beyond max_mapnr ${hex(this.maxPfn)}`, { file: this.file });
    }
    if (this.part && (pfn < this.part.start || pfn >= this.part.end)) throw this.otherPart(pfn);
    const { rank, set } = await this.rankOf(pfn);
    if (!set) throw new DumpError('ADDRESS_UNMAPPED', `physical address ${hex(paddr)} is not in the dump (excluded or not RAM)`, { file: this.file });
    const b = Math.floor(rank / DESC_BATCH);
    const batch = await this.descBatch(b);
    const o = (rank - b * DESC_BATCH) * PAGE_DESC_SIZE;
    const d = this.decodeDesc(new DataView(batch.buffer, batch.byteOffset, batch.byteLength), o, pfn, this.descOff + rank * PAGE_DESC_SIZE);
    const { offset, size, flags } = d;
    const page = this.pages.recycle();
    if (flags === 0) {
      await readExact(this.src, page, 0, size, offset, `data of pfn ${hex(pfn)}`);
    } else {
      await readExact(this.src, this.scratch, 0, size, offset, `data of pfn ${hex(pfn)}`);
      if (!this.decoder.ready(flags)) await this.decoder.prepare(flags);
      const problem = this.decoder.decompress(flags, this.scratch.subarray(0, size), page, 0);
      if (problem !== undefined) throw new DumpError('DUMP_CORRUPT', `pfn ${hex(pfn)}: ${problem}`, { file: this.file, offset });
    }
    this.pages.set(pfn, page);
    return page;
  }

  /** Descriptor batch `b` (DESC_BATCH entries from rank b*DESC_BATCH), cached. */
  private async descBatch(b: number): Promise<Uint8Array> {
    const hit = this.descCache.get(b);
    if (hit) return hit;
    const buf = this.descCache.recycle();
    const first = b * DESC_BATCH;
    const n = Math.min(DESC_BATCH, this.descCount - first);
    const pos = this.descOff + first * PAGE_DESC_SIZE;
    const avail = Math.max(0, Math.min(n * PAGE_DESC_SIZE, this.src.size - pos));
    if (avail > 0) await readExact(this.src, buf, 0, avail, pos, 'page descriptors');
    buf.fill(0, avail);
    this.descCache.set(b, buf);
    return buf;
  }

  close(): Promise<void> {
    return this.src.close();
  }
}

function emptySubHeader(): KdumpSubHeader {
  return {
    physBase: 0,
    dumpLevel: 0,
    split: 0,
    startPfn: 0,
    endPfn: 0,
    offsetVmcoreinfo: 0,
    sizeVmcoreinfo: 0,
    offsetNote: 0,
    sizeNote: 0,
    offsetEraseinfo: 0,
    sizeEraseinfo: 0,
    startPfn64: 0,
    endPfn64: 0,
    maxMapnr64: 0,
  };
}

function isBlockSize(v: number): boolean {
  return v >= MIN_BLOCK_SIZE && v <= MAX_BLOCK_SIZE && (v & (v - 1)) === 0;
}

/** block_size, checked; says when the header looks big-endian or 32-bit instead. */
function checkBlockSize(dh: DiskDumpHeader, head: Uint8Array, file: string): number {
  const bs = dh.blockSize;
  if (isBlockSize(bs)) return bs;
  const ctx = { file, offset: DH_OFF.blockSize };
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (isBlockSize(dv.getInt32(DH_OFF.blockSize, false))) {
    throw new DumpError('DUMP_UNSUPPORTED', 'big-endian kdump file: only little-endian (x86_64) dumps are supported', ctx);
  }
  // The 32-bit layout has 2 bytes of padding after utsname and a 8-byte timeval.
  if (isBlockSize(dv.getInt32(416, true))) {
    throw new DumpError('DUMP_UNSUPPORTED', 'kdump file of a 32-bit system: only x86_64 dumps are supported', ctx);
  }
  if (bs > MAX_BLOCK_SIZE && (bs & (bs - 1)) === 0) {
    throw new DumpError('DUMP_LIMIT_EXCEEDED', `block_size ${bs} is above the limit of ${MAX_BLOCK_SIZE}`, ctx);
  }
  throw new DumpError('DUMP_CORRUPT', `block_size ${bs} is not a power of two in ${MIN_BLOCK_SIZE}..${MAX_BLOCK_SIZE}`, ctx);
}

/** disk_dump_header: read, its signature checked, decoded. */
async function readDiskDumpHeader(src: ByteSource): Promise<{ head: Uint8Array; sig: string; dh: DiskDumpHeader }> {
  const file = src.name;
  if (src.size < DISK_DUMP_HEADER_SIZE) {
    throw new DumpError('DUMP_TRUNCATED', `disk_dump_header needs ${DISK_DUMP_HEADER_SIZE} bytes, the file has ${src.size}`, { file, offset: 0 });
  }
  const head = new Uint8Array(DISK_DUMP_HEADER_SIZE);
  await readExact(src, head, 0, DISK_DUMP_HEADER_SIZE, 0, 'disk_dump_header');
  const sig = signatureOf(head);
  if (sig !== KDUMP_SIGNATURE && sig !== DISKDUMP_SIGNATURE) {
    throw new DumpError('DUMP_UNSUPPORTED', `signature ${JSON.stringify(sig)} is neither "KDUMP   " nor "DISKDUMP"`, { file, offset: 0 });
  }
  return { head, sig, dh: decodeDiskDumpHeader(head, file) };
}

/**
 * kdump_sub_header (header_version 1 and later; all zero before), after
 * checking that sub_hdr_size blocks (the sub header and the notes copy
 * behind it) are plausible and in the file.
 */
async function readSubHeader(src: ByteSource, dh: DiskDumpHeader, bs: number): Promise<KdumpSubHeader> {
  const at = { file: src.name, offset: DH_OFF.subHdrSize };
  const version = dh.headerVersion;
  const maxSubBlocks = Math.ceil((KDUMP_SUB_HEADER_SIZE + MAX_NOTES_BYTES) / bs) + 1;
  if (dh.subHdrSize < 0) throw new DumpError('DUMP_CORRUPT', `sub_hdr_size ${dh.subHdrSize} is negative`, at);
  if (dh.subHdrSize > maxSubBlocks) {
    throw new DumpError('DUMP_LIMIT_EXCEEDED', `sub_hdr_size ${dh.subHdrSize} blocks is above the limit of ${maxSubBlocks}`, at);
  }
  if (version >= 1 && dh.subHdrSize < 1) {
    throw new DumpError('DUMP_CORRUPT', `sub_hdr_size is 0 but header_version ${version} has a sub header`, at);
  }
  const bm1Off = (1 + dh.subHdrSize) * bs;
  if (bm1Off > src.size) {
    throw new DumpError('DUMP_TRUNCATED', `the bitmaps start at ${hex(bm1Off)} (sub_hdr_size ${dh.subHdrSize}), past the end of the file (${hex(src.size)})`, at);
  }
  if (version < 1) return emptySubHeader();
  const raw = new Uint8Array(KDUMP_SUB_HEADER_SIZE);
  await readExact(src, raw, 0, KDUMP_SUB_HEADER_SIZE, bs, 'kdump_sub_header');
  return decodeSubHeader(raw, version, src.name, bs);
}

/**
 * The pfn range of a split part (undefined for a whole dump): the _64
 * fields from header_version 6 (makedumpfile store_splitting_info), else
 * the native-width ones. A part is refused unless opts.splitPart.
 */
function splitPart(src: ByteSource, dh: DiskDumpHeader, sh: KdumpSubHeader, bs: number, opts: KdumpReaderOptions): { start: number; end: number } | undefined {
  if (sh.split === 0) return undefined;
  const v6 = dh.headerVersion >= 6;
  const part = { start: v6 ? sh.startPfn64 : sh.startPfn, end: v6 ? sh.endPfn64 : sh.endPfn };
  if (!opts.splitPart) {
    throw new DumpError(
      'DUMP_UNSUPPORTED',
      `this file is one part of a split dump (pfns ${formatRange(part.start, part.end)}): name every part of the set (dumpsieve info PART...), or join them with dumpsieve reassemble`,
      { file: src.name, offset: bs + KH_OFF.split },
    );
  }
  return part;
}

/** max_mapnr (max_mapnr_64 from header_version 6), checked against the physical address space and the file's size. */
function checkMaxPfn(src: ByteSource, dh: DiskDumpHeader, sh: KdumpSubHeader, bs: number, warnings: string[]): number {
  const file = src.name;
  let maxPfn = dh.maxMapnr;
  let maxPfnAt = DH_OFF.maxMapnr;
  if (dh.headerVersion >= 6) {
    if (sh.maxMapnr64 === 0 && dh.maxMapnr !== 0) {
      // max_mapnr_64 left unset: the 32-bit field holds the value unless
      // it is saturated (makedumpfile writes min(max_mapnr, 2^32-1)).
      if (dh.maxMapnr === 0xffffffff) {
        throw new DumpError('DUMP_CORRUPT', `max_mapnr_64 is 0 while max_mapnr is saturated (${hex(dh.maxMapnr)})`, { file, offset: bs + KH_OFF.maxMapnr64 });
      }
      warnings.push(`max_mapnr_64 is 0: max_mapnr ${hex(dh.maxMapnr)} from the 32-bit field used`);
    } else {
      maxPfn = sh.maxMapnr64;
      maxPfnAt = bs + KH_OFF.maxMapnr64;
    }
  }
  const pfnLimit = 2 ** MAX_PHYS_BITS / bs;
  if (maxPfn > pfnLimit) {
    throw new DumpError('DUMP_LIMIT_EXCEEDED', `max_mapnr ${maxPfn} is above ${pfnLimit} (2^${MAX_PHYS_BITS} bytes of physical memory)`, { file, offset: maxPfnAt });
  }
  const spanLimit = pfnSpanLimit(src.storedBytes ?? src.size);
  if (maxPfn > spanLimit) {
    throw new DumpError(
      'DUMP_LIMIT_EXCEEDED',
      `max_mapnr ${hex(maxPfn)} is beyond the ${hex(spanLimit)} pfns a file of ${src.storedBytes ?? src.size} bytes may describe`,
      { file, offset: maxPfnAt },
    );
  }
  return maxPfn;
}

/** Where the bitmaps and the descriptor table are. */
interface BitmapLayout {
  /** 1 or 2 bitmaps. */
  count: number;
  bm1Off: number;
  bm2Off: number;
  /** Bytes of bitmap that hold max_mapnr bits. */
  usedBytes: number;
  descOff: number;
}

/**
 * Two bitmaps of equal size (1st = RAM, 2nd = dumped) when bitmap_blocks
 * is even and holds twice max_mapnr bits, else one (dumped) bitmap, as in
 * old diskdump files. The descriptor table follows them.
 */
function bitmapLayout(src: ByteSource, dh: DiskDumpHeader, bs: number, maxPfn: number): BitmapLayout {
  const file = src.name;
  const bm1Off = (1 + dh.subHdrSize) * bs;
  const bitmapBytes = dh.bitmapBlocks * bs;
  let bm2Off = bm1Off;
  let count = 1;
  if (dh.bitmapBlocks % 2 === 0 && maxPfn <= (bitmapBytes * 8) / 2) {
    bm2Off = bm1Off + bitmapBytes / 2;
    count = 2;
  } else if (maxPfn > bitmapBytes * 8) {
    throw new DumpError('DUMP_CORRUPT', `bitmap_blocks ${dh.bitmapBlocks} (${bitmapBytes * 8} bits) cannot cover max_mapnr ${maxPfn}`, {
      file,
      offset: DH_OFF.bitmapBlocks,
    });
  }
  const descOff = bm1Off + bitmapBytes;
  if (descOff > src.size) {
    throw new DumpError('DUMP_TRUNCATED', `the bitmaps (${count} × ${bitmapBytes / count} bytes) run past the end of the file (${hex(src.size)})`, {
      file,
      offset: bm1Off,
    });
  }
  return { count, bm1Off, bm2Off, usedBytes: Math.ceil(maxPfn / 8), descOff };
}

/**
 * The rank index over the 2nd bitmap (chunks of `chunkBytes`, doubled
 * until there are at most MAX_RANK_ENTRIES), and this file's share of the
 * descriptor table: a split part's table holds its own range's pages only
 * (makedumpfile write_kdump_pages_cyclic with info->split_start_pfn).
 */
async function indexBitmap(
  src: ByteSource,
  b: BitmapLayout,
  maxPfn: number,
  part: { start: number; end: number } | undefined,
  chunkBytes: number,
): Promise<{ chunkBytes: number; rank0: Float64Array; rankBase: number; descCount: number }> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 64 || (chunkBytes & (chunkBytes - 1)) !== 0) {
    throw new RangeError(`KdumpReader: rankChunkBytes ${chunkBytes} is not a power of two >= 64`);
  }
  while (Math.ceil(b.usedBytes / chunkBytes) > MAX_RANK_ENTRIES) chunkBytes *= 2;
  const rank0 = await buildRankIndex(src, b.bm2Off, b.usedBytes, maxPfn, chunkBytes);
  const rankAtPfn = (pfn: number): Promise<number> => rankAt(src, b.bm2Off, b.usedBytes, maxPfn, chunkBytes, rank0, pfn);
  const rankBase = part ? await rankAtPfn(part.start) : 0;
  const descCount = part ? (await rankAtPfn(part.end)) - rankBase : rank0[rank0.length - 1]!;
  return { chunkBytes, rank0, rankBase, descCount };
}

/** The ELF notes copy (header_version 4+) and VMCOREINFO: from its note, else from offset_vmcoreinfo (version 3+). */
async function readKdumpNotes(
  src: ByteSource,
  dh: DiskDumpHeader,
  sh: KdumpSubHeader,
  bs: number,
): Promise<{ bytes: Uint8Array; cpus: number; vmcoreinfo: VmcoreInfo | undefined; from: string }> {
  const file = src.name;
  const version = dh.headerVersion;
  let bytes: Uint8Array = new Uint8Array(0);
  let cpus = 0;
  let vmcoreinfo: VmcoreInfo | undefined;
  if (version >= 4 && sh.sizeNote > 0) {
    if (sh.sizeNote > MAX_NOTES_BYTES) {
      throw new DumpError('DUMP_LIMIT_EXCEEDED', `size_note ${sh.sizeNote} is above the limit of ${MAX_NOTES_BYTES}`, { file, offset: bs + KH_OFF.sizeNote });
    }
    if (sh.offsetNote < bs) {
      throw new DumpError('DUMP_CORRUPT', `offset_note ${hex(sh.offsetNote)} lies in the main header block`, { file, offset: bs + KH_OFF.offsetNote });
    }
    const raw = await readRegion(src, sh.offsetNote, sh.sizeNote, 'ELF notes', `the ELF notes (${sh.sizeNote} bytes) run`);
    const found = scanCoreNotes(raw, file, sh.offsetNote);
    cpus = found.cpus;
    vmcoreinfo = found.vmcoreinfo;
    bytes = raw.subarray(0, found.used);
  }
  if (vmcoreinfo) return { bytes, cpus, vmcoreinfo, from: 'note' };
  if (version >= 3 && sh.sizeVmcoreinfo > 0) {
    // header_version 3 keeps VMCOREINFO only here; later versions also
    // point here, into the note copy (used when there is no note).
    if (sh.sizeVmcoreinfo > VMCOREINFO_MAX_BYTES) {
      throw new DumpError('DUMP_LIMIT_EXCEEDED', `size_vmcoreinfo ${sh.sizeVmcoreinfo} is above ${VMCOREINFO_MAX_BYTES}`, { file, offset: bs + KH_OFF.sizeVmcoreinfo });
    }
    const raw = await readRegion(src, sh.offsetVmcoreinfo, sh.sizeVmcoreinfo, 'VMCOREINFO', `VMCOREINFO (${sh.sizeVmcoreinfo} bytes) runs`);
    return { bytes, cpus, vmcoreinfo: VmcoreInfo.parse(raw, { file, offset: sh.offsetVmcoreinfo }), from: 'offset_vmcoreinfo' };
  }
  return { bytes, cpus, vmcoreinfo, from: 'none' };
}

/**
 * eraseinfo (header_version 5+): the text makedumpfile --config leaves of
 * what it erased; shown (at most MAX_ERASEINFO_SHOWN bytes), never needed
 * to read pages.
 */
async function readEraseinfo(src: ByteSource, dh: DiskDumpHeader, sh: KdumpSubHeader, warnings: string[]): Promise<string | undefined> {
  if (dh.headerVersion < 5 || sh.sizeEraseinfo <= 0) return undefined;
  const n = Math.min(sh.sizeEraseinfo, MAX_ERASEINFO_SHOWN);
  const raw = await readRegion(src, sh.offsetEraseinfo, sh.sizeEraseinfo, 'eraseinfo', `eraseinfo (${sh.sizeEraseinfo} bytes) runs`, n);
  if (n < sh.sizeEraseinfo) warnings.push(`eraseinfo is ${sh.sizeEraseinfo} bytes: the first ${n} are shown`);
  return Buffer.from(raw.buffer, raw.byteOffset, n).toString('latin1');
}

/**
 * The first `keep` bytes of the `size` bytes at `offset` (a region a
 * sub-header field points to), after checking the whole region is in the
 * file: "`runs` past the end of the file" at `offset` if not.
 */
async function readRegion(src: ByteSource, offset: number, size: number, what: string, runs: string, keep = size): Promise<Uint8Array> {
  if (offset + size > src.size) {
    throw new DumpError('DUMP_TRUNCATED', `${runs} past the end of the file (${hex(src.size)})`, { file: src.name, offset });
  }
  const raw = new Uint8Array(keep);
  await readExact(src, raw, 0, keep, offset, what);
  return raw;
}

/** The header fields `info` shows, in its order. */
function describeKdump(
  sig: string,
  dh: DiskDumpHeader,
  sh: KdumpSubHeader,
  bitmaps: number,
  descCount: number,
  vmcoreinfoFrom: string,
  part: { start: number; end: number } | undefined,
): DumpInfo['details'] {
  const version = dh.headerVersion;
  return {
    signature: sig.trimEnd(),
    'header version': version,
    'block size': dh.blockSize,
    'sub header blocks': dh.subHdrSize,
    'bitmap blocks': dh.bitmapBlocks,
    bitmaps,
    'max_mapnr': dh.maxMapnr,
    ...(version >= 6 ? { 'max_mapnr_64': sh.maxMapnr64 } : {}),
    'dumped pages': descCount,
    'dump level': version >= 1 ? sh.dumpLevel : 'n/a',
    status: `0x${dh.status.toString(16)} (${describeStatus(dh.status)})`,
    'incomplete (status & 0x8)': (dh.status & DUMP_DH.COMPRESSED_INCOMPLETE) !== 0,
    'excluded vmemmap (status & 0x10)': (dh.status & DUMP_DH.EXCLUDED_VMEMMAP) !== 0,
    'nr_cpus': dh.nrCpus,
    timestamp: Math.abs(dh.timestampSec) <= 8.64e12 ? new Date(dh.timestampSec * 1000).toISOString() : String(dh.timestampSec),
    'phys base': `0x${sh.physBase.toString(16)}`,
    'notes offset': sh.offsetNote,
    'notes size': sh.sizeNote,
    'vmcoreinfo from': vmcoreinfoFrom,
    ...(version >= 5 && sh.sizeEraseinfo > 0 ? { 'eraseinfo offset': sh.offsetEraseinfo, 'eraseinfo size': sh.sizeEraseinfo } : {}),
    ...(part ? { 'split part': `pfns ${formatRange(part.start, part.end)}` } : {}),
  };
}

/** Set bits of the 2nd bitmap before each chunk, read in one sequential pass. */
async function buildRankIndex(src: ByteSource, base: number, usedBytes: number, maxPfn: number, chunkBytes: number): Promise<Float64Array> {
  const nChunks = Math.ceil(usedBytes / chunkBytes);
  const rank0 = new Float64Array(nChunks + 1);
  const readSize = Math.max(SCAN_READ, chunkBytes);
  const buf = new Uint8Array(Math.min(readSize, Math.ceil(usedBytes / chunkBytes) * chunkBytes || chunkBytes));
  const words = new Uint32Array(buf.buffer, 0, buf.length >> 2);
  let total = 0;
  let chunk = 0;
  for (let pos = 0; pos < usedBytes; pos += buf.length) {
    const n = Math.min(buf.length, usedBytes - pos);
    await readExact(src, buf, 0, n, base + pos, '2nd bitmap');
    buf.fill(0, n);
    maskTail(buf, pos, n, maxPfn);
    const chunksHere = Math.ceil(n / chunkBytes);
    const wordsPerChunk = chunkBytes >> 2;
    for (let k = 0; k < chunksHere; k++) {
      rank0[chunk++] = total;
      const w0 = k * wordsPerChunk;
      for (let w = w0; w < w0 + wordsPerChunk; w++) {
        const x = words[w]!;
        if (x !== 0) total += popcount32(x);
      }
    }
  }
  rank0[nChunks] = total;
  return rank0;
}

/** Set bits of the 2nd bitmap before `pfn` (the rank index plus one partial chunk read). */
async function rankAt(
  src: ByteSource,
  base: number,
  usedBytes: number,
  maxPfn: number,
  chunkBytes: number,
  rank0: Float64Array,
  pfn: number,
): Promise<number> {
  const chunkPfns = chunkBytes * 8;
  const c = Math.floor(pfn / chunkPfns);
  if (c >= rank0.length - 1) return rank0[rank0.length - 1]!;
  const rel = pfn - c * chunkPfns;
  const bytes = rel >> 3;
  const buf = new Uint8Array(bytes + 1);
  const n = Math.min(bytes + 1, usedBytes - c * chunkBytes);
  await readExact(src, buf, 0, n, base + c * chunkBytes, '2nd bitmap');
  maskTail(buf, c * chunkBytes, n, maxPfn);
  let r = rank0[c]! + popcountBytes(buf, 0, bytes);
  if (rel & 7) r += POPCOUNT8[buf[bytes]! & ((1 << (rel & 7)) - 1)]!;
  return r;
}

/** 'none', one codec name, or 'mixed' for a set of compression bits. */
function compressionName(bits: number): string {
  const b = bits & COMPRESSION_MASK;
  if (b === 0) return 'none';
  const c = codecOfFlags(b);
  return c ?? 'mixed';
}
