/**
 * reassembleDump(): one kdump-compressed file from the parts of a split set
 * (makedumpfile --split), the pages stored as they are (no
 * decompression, no recompression), laid out as makedumpfile --reassemble
 * lays them out (makedumpfile.c reassemble_kdump_header,
 * reassemble_kdump_pages):
 *
 *   block 0          disk_dump_header: the first part flagged incomplete,
 *                    else the last part's (all equal otherwise)
 *   block 1          kdump_sub_header of the first part with split,
 *                    start_pfn(_64) and end_pfn(_64) cleared; the ELF notes
 *                    and VMCOREINFO copied to the same offsets
 *   bitmaps          each part's bits over its own pfn range (the parts'
 *                    bitmaps are the same whole-dump bitmaps)
 *   descriptors      one per dumped pfn, in pfn order, offsets rewritten
 *   data             the shared zero page first when dump_level has bit 1
 *                    (every part's descriptors that point at its zero page
 *                    point at it), then every other page's stored bytes
 *   eraseinfo        the parts' eraseinfo, concatenated
 *
 * makedumpfile-made parts reassemble byte-identical to makedumpfile's
 * output. Memory is a few buffers; the output is written atomically.
 */
import { setU64 } from '../core/checked.js';
import { stat } from 'node:fs/promises';
import { DumpError, UsageError, hex, ioError } from '../core/errors.js';
import { AtomicFileSink, SequentialWriter } from '../io/sink.js';
import { readExact } from '../io/source.js';
import { DISK_DUMP_HEADER_SIZE, DUMP_DH, DH_OFF, KDUMP_SUB_HEADER_SIZE, KH_OFF, PAGE_DESC_SIZE } from '../formats/kdump/header.js';
import type { KdumpReader } from '../formats/kdump/reader.js';
import { PfnState } from '../formats/types.js';
import { openSplitSet, type DumpInput } from './input.js';
import { WINDOW } from './scan.js';
import { nowMs } from '../core/clock.js';

export interface ReassembleOptions {
  /** The parts, in any order (or a spec with them). */
  parts: DumpInput;
  output: string;
  onProgress?: ((p: { phase: 'copy'; done: number; total: number }) => void) | undefined;
}

export interface ReassembleReport {
  parts: Array<{ file: string; startPfn: number; endPfn: number; bytes: number }>;
  output: { file: string; bytes: number };
  maxPfn: number;
  /** Page descriptors written (dumped pfns). */
  pages: number;
  /** Of them, pointing at the shared zero page. */
  zeroPages: number;
  /** Stored page bytes copied. */
  dataBytes: number;
  eraseinfoBytes: number;
  seconds: number;
}

/** Descriptors handled per batch. */
const BATCH = 4096;
/** Stored bytes read at once. */
const READ_BYTES = 1 << 20;

const TWO32 = 0x1_0000_0000;

export async function reassembleDump(opts: ReassembleOptions): Promise<ReassembleReport> {
  const t0 = nowMs();
  const set = await openSplitSet(opts.parts);
  let sink: AtomicFileSink | undefined;
  try {
    const parts = set.parts;
    await refuseOutputIsPart(opts.output, parts);
    const L = parts[0]!.layout;
    const bs = L.blockSize;
    sink = await AtomicFileSink.create(opts.output);
    const kh = await writeHeaders(parts, sink);

    // Bitmaps: each part's bits over its own range.
    const twoBitmaps = L.bm2Off !== L.bm1Off;
    const each = twoBitmaps ? (L.bitmapBlocks * bs) / 2 : L.bitmapBlocks * bs;
    await assembleBitmap(parts, set.info.maxPfn, (r) => r.layout.bm1Off, L.bm1Off, each, sink);
    if (twoBitmaps) await assembleBitmap(parts, set.info.maxPfn, (r) => r.layout.bm2Off, L.bm2Off, each, sink);

    const copier = new PageCopier(parts, sink, opts.onProgress);
    await copier.begin();
    for (const r of parts) await copier.part(r);
    const eraseBytes = await copier.eraseinfo(kh);
    const bytes = await copier.finish();
    if (L.headerVersion >= 1) await sink.write(kh, bs);
    await sink.setLength(bytes);
    await sink.commit();
    sink = undefined;
    return {
      parts: set.info.parts!.map((p) => ({ ...p })),
      output: { file: opts.output, bytes },
      maxPfn: set.info.maxPfn,
      pages: copier.written,
      zeroPages: copier.zeroPages,
      dataBytes: copier.dataBytes,
      eraseinfoBytes: eraseBytes,
      seconds: (nowMs() - t0) / 1000,
    };
  } finally {
    await sink?.abort();
    await set.close();
  }
}

/**
 * The disk_dump_header (an incomplete part's, if any, so the result says
 * so), the notes and VMCOREINFO of the first part; returns the
 * kdump_sub_header with the split fields cleared (written last, once the
 * eraseinfo offset is known).
 */
async function writeHeaders(parts: readonly KdumpReader[], out: AtomicFileSink): Promise<Uint8Array> {
  const p0 = parts[0]!;
  const L = p0.layout;
  const dh = (parts.find((r) => (headerStatus(r) & DUMP_DH.COMPRESSED_INCOMPLETE) !== 0) ?? parts[parts.length - 1]!).rawHeader;
  await out.write(dh.subarray(0, DISK_DUMP_HEADER_SIZE), 0);
  const kh = new Uint8Array(KDUMP_SUB_HEADER_SIZE);
  const khv = new DataView(kh.buffer);
  if (L.headerVersion >= 1) {
    await readExact(p0.source, kh, 0, KDUMP_SUB_HEADER_SIZE, L.blockSize, 'kdump_sub_header');
    khv.setInt32(KH_OFF.split, 0, true);
    for (const f of [KH_OFF.startPfn, KH_OFF.endPfn, KH_OFF.startPfn64, KH_OFF.endPfn64]) khv.setBigUint64(f, 0n, true);
  }
  const sh = p0.subHeader;
  if (L.headerVersion >= 4 && sh.offsetNote && sh.sizeNote) await copyBytes(p0, out, sh.offsetNote, sh.sizeNote, sh.offsetNote, 'ELF notes');
  if (L.headerVersion >= 3 && sh.offsetVmcoreinfo && sh.sizeVmcoreinfo) {
    await copyBytes(p0, out, sh.offsetVmcoreinfo, sh.sizeVmcoreinfo, sh.offsetVmcoreinfo, 'VMCOREINFO');
  }
  return kh;
}

/**
 * Descriptors and stored page data of every part, in pfn order, into one
 * descriptor table and one data area: bytes copied as they are (no
 * recompression), offsets rewritten, runs of adjacent stored pages read at
 * once. makedumpfile writes the zero page first in every part (and here)
 * when dump_level excludes zero pages; descriptors pointing there are zero
 * pages.
 */
class PageCopier {
  written = 0;
  zeroPages = 0;
  dataBytes = 0;
  private readonly bs: number;
  private readonly total: number;
  private readonly descOut: SequentialWriter;
  private readonly dataOut: SequentialWriter;
  private readonly zeroShared: boolean;
  private readonly zeroOffset: number;
  private readonly zeroDesc = new Uint8Array(PAGE_DESC_SIZE);
  private readonly desc = new Uint8Array(BATCH * PAGE_DESC_SIZE);
  private readonly dv = new DataView(this.desc.buffer);
  private readonly pfns = new Float64Array(BATCH);
  private readonly data: Uint8Array;

  constructor(
    private readonly parts: readonly KdumpReader[],
    out: AtomicFileSink,
    private readonly onProgress: ReassembleOptions['onProgress'],
  ) {
    const L = parts[0]!.layout;
    this.bs = L.blockSize;
    this.total = parts.reduce((s, r) => s + r.layout.descCount, 0);
    const descStart = (1 + L.subHdrBlocks + L.bitmapBlocks) * this.bs;
    const dataStart = descStart + this.total * PAGE_DESC_SIZE;
    this.descOut = new SequentialWriter(out, descStart, 1 << 20);
    this.dataOut = new SequentialWriter(out, dataStart);
    this.zeroShared = (parts[0]!.subHeader.dumpLevel & 1) !== 0;
    this.zeroOffset = dataStart;
    this.data = new Uint8Array(Math.max(READ_BYTES, this.bs));
  }

  /** The shared zero page, first in the data area, when the dump level excludes zero pages. */
  async begin(): Promise<void> {
    if (!this.zeroShared) return;
    const zv = new DataView(this.zeroDesc.buffer);
    setU64(zv, 0, this.zeroOffset);
    zv.setUint32(8, this.bs, true);
    await this.dataOut.appendZeros(this.bs);
  }

  /** Copy one part's pages (its 2nd bitmap over its own pfn range). */
  async part(r: KdumpReader): Promise<void> {
    const { start, end } = r.part!;
    const states = new Uint8Array(WINDOW);
    let index = 0;
    let batchN = 0;
    for (let w = start; w < end; w += WINDOW) {
      const n = Math.min(WINDOW, end - w);
      await r.pfnStates(w, n, states);
      for (let i = 0; i < n; i++) {
        if (states[i] !== PfnState.PRESENT) continue;
        this.pfns[batchN++] = w + i;
        if (batchN === BATCH) {
          await this.batch(r, index, batchN);
          index += batchN;
          batchN = 0;
        }
      }
    }
    await this.batch(r, index, batchN);
    index += batchN;
    if (index !== r.layout.descCount) {
      throw new DumpError('DUMP_CORRUPT', `the 2nd bitmap sets ${index} pfns in this part's range, the descriptor table has ${r.layout.descCount}`, {
        file: r.info.file,
        offset: r.layout.bm2Off,
      });
    }
  }

  /** Copy descriptors [index, index+n) of a part, with their data. */
  private async batch(r: KdumpReader, index: number, n: number): Promise<void> {
    if (n === 0) return;
    const { dv, desc, data } = this;
    await r.readDescriptors(index, n, desc, (i) => this.pfns[i]!);
    const offsetOf = (k: number): number => dv.getUint32(k * PAGE_DESC_SIZE, true) + dv.getUint32(k * PAGE_DESC_SIZE + 4, true) * TWO32;
    const sizeOf = (k: number): number => dv.getUint32(k * PAGE_DESC_SIZE + 8, true);
    for (let i = 0; i < n; ) {
      const off = offsetOf(i);
      if (this.zeroShared && off === this.zeroOffset) {
        await this.descOut.append(this.zeroDesc);
        this.zeroPages++;
        i++;
        continue;
      }
      // Pages whose stored bytes follow each other: one read.
      let j = i + 1;
      let bytes = sizeOf(i);
      while (j < n && offsetOf(j) === off + bytes && !(this.zeroShared && offsetOf(j) === this.zeroOffset) && bytes + sizeOf(j) <= data.length) {
        bytes += sizeOf(j);
        j++;
      }
      await readExact(r.source, data, 0, bytes, off, `data of pfn ${hex(this.pfns[i]!)}`);
      await this.dataOut.append(data.subarray(0, bytes));
      let newOff = this.dataOut.position - bytes;
      for (let k = i; k < j; k++) {
        const ok = k * PAGE_DESC_SIZE;
        const size = sizeOf(k);
        setU64(dv, ok, newOff);
        newOff += size;
        await this.descOut.append(desc.subarray(ok, ok + PAGE_DESC_SIZE));
      }
      this.dataBytes += bytes;
      i = j;
    }
    this.written += n;
    this.onProgress?.({ phase: 'copy', done: this.written, total: this.total });
  }

  /** Every part's eraseinfo after the data; the sub header is told where. Returns its bytes. */
  async eraseinfo(kh: Uint8Array): Promise<number> {
    const at = this.dataOut.position;
    let bytes = 0;
    for (const r of this.parts) {
      const s = r.subHeader;
      if (r.layout.headerVersion < 5 || s.sizeEraseinfo === 0) continue;
      for (let done = 0; done < s.sizeEraseinfo; ) {
        const n = Math.min(this.data.length, s.sizeEraseinfo - done);
        await readExact(r.source, this.data, 0, n, s.offsetEraseinfo + done, 'eraseinfo');
        await this.dataOut.append(this.data.subarray(0, n));
        done += n;
      }
      bytes += s.sizeEraseinfo;
    }
    if (bytes > 0) {
      const khv = new DataView(kh.buffer);
      setU64(khv, KH_OFF.offsetEraseinfo, at);
      setU64(khv, KH_OFF.sizeEraseinfo, bytes);
    }
    return bytes;
  }

  /** Drain both writers; returns the file's length. */
  async finish(): Promise<number> {
    await this.descOut.drain();
    await this.dataOut.drain();
    return this.dataOut.position;
  }
}

function headerStatus(r: KdumpReader): number {
  return new DataView(r.rawHeader.buffer, r.rawHeader.byteOffset, DISK_DUMP_HEADER_SIZE).getUint32(DH_OFF.status, true);
}


/** Copy `len` bytes at `from` of a part to `to` of the output, in bounded pieces. */
async function copyBytes(r: KdumpReader, out: AtomicFileSink, from: number, len: number, to: number, what: string): Promise<void> {
  const buf = new Uint8Array(Math.min(len, READ_BYTES));
  for (let done = 0; done < len; ) {
    const n = Math.min(buf.length, len - done);
    await readExact(r.source, buf, 0, n, from + done, what);
    await out.write(buf.subarray(0, n), to + done);
    done += n;
  }
}

/**
 * One bitmap of the output (`len` bytes at `at`) from the parts' bitmaps
 * (at `baseOf(part)` in each): every pfn's bit from the part that holds
 * it; bits at and past max_mapnr (padding) from the first part.
 */
async function assembleBitmap(
  parts: readonly KdumpReader[],
  maxPfn: number,
  baseOf: (r: KdumpReader) => number,
  at: number,
  len: number,
  out: AtomicFileSink,
): Promise<void> {
  const acc = new Uint8Array(Math.min(len, READ_BYTES));
  const tmp = new Uint8Array(acc.length);
  const ranges: Array<{ r: KdumpReader; start: number; end: number }> = parts.map((r) => ({ r, start: r.part!.start, end: r.part!.end }));
  ranges.push({ r: parts[0]!, start: maxPfn, end: Number.POSITIVE_INFINITY });
  for (let b0 = 0; b0 < len; b0 += acc.length) {
    const n = Math.min(acc.length, len - b0);
    acc.fill(0, 0, n);
    const lo = b0 * 8;
    const hi = (b0 + n) * 8;
    for (const { r, start, end } of ranges) {
      const s = Math.max(start, lo);
      const e = Math.min(end, hi);
      if (s >= e) continue;
      const first = s >> 3;
      const last = (e - 1) >> 3;
      const k = last - first + 1;
      await readExact(r.source, tmp, 0, k, baseOf(r) + first, 'bitmap');
      for (let i = 0; i < k; i++) {
        const byte = first + i;
        let mask = 0xff;
        if (byte === first) mask &= (0xff << (s & 7)) & 0xff;
        if (byte === last && (e & 7) !== 0) mask &= (1 << (e & 7)) - 1;
        acc[byte - b0]! |= tmp[i]! & mask;
      }
    }
    await out.write(acc.subarray(0, n), at + b0);
  }
}

/** Refuse an output that is one of the parts (same file, whatever its name). */
async function refuseOutputIsPart(output: string, parts: readonly KdumpReader[]): Promise<void> {
  let o;
  try {
    o = await stat(output);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(err, output, 'cannot stat');
  }
  for (const r of parts) {
    const p = await stat(r.info.file).catch(() => undefined);
    if (p && p.dev === o.dev && p.ino === o.ino) throw new UsageError(`the output is the split part ${r.info.file}`, { file: output });
  }
}
