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
import { stat } from 'node:fs/promises';
import { DumpError, UsageError, hex, ioError } from '../core/errors.js';
import { AtomicFileSink, SequentialWriter } from '../io/sink.js';
import { readExact } from '../io/source.js';
import { DISK_DUMP_HEADER_SIZE, DUMP_DH, DH_OFF, KDUMP_SUB_HEADER_SIZE, KH_OFF, PAGE_DESC_SIZE } from '../formats/kdump/header.js';
import type { KdumpReader } from '../formats/kdump/reader.js';
import { PfnState } from '../formats/types.js';
import { openSplitSet, type DumpInput } from './input.js';
import { WINDOW } from './scan.js';

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
  const t0 = performance.now();
  const set = await openSplitSet(opts.parts);
  let sink: AtomicFileSink | undefined;
  try {
    const parts = set.parts;
    await refuseOutputIsPart(opts.output, parts);
    const p0 = parts[0]!;
    const L = p0.layout;
    const bs = L.blockSize;
    const maxPfn = set.info.maxPfn;
    const dumpLevel = p0.subHeader.dumpLevel;
    sink = await AtomicFileSink.create(opts.output);
    const out = sink;

    // Headers, notes, VMCOREINFO.
    const dh = (parts.find((r) => (headerStatus(r) & DUMP_DH.COMPRESSED_INCOMPLETE) !== 0) ?? parts[parts.length - 1]!).rawHeader;
    await out.write(dh.subarray(0, DISK_DUMP_HEADER_SIZE), 0);
    const kh = new Uint8Array(KDUMP_SUB_HEADER_SIZE);
    const khv = new DataView(kh.buffer);
    if (L.headerVersion >= 1) {
      await readExact(p0.source, kh, 0, KDUMP_SUB_HEADER_SIZE, bs, 'kdump_sub_header');
      khv.setInt32(KH_OFF.split, 0, true);
      for (const f of [KH_OFF.startPfn, KH_OFF.endPfn, KH_OFF.startPfn64, KH_OFF.endPfn64]) khv.setBigUint64(f, 0n, true);
    }
    const sh = p0.subHeader;
    if (L.headerVersion >= 4 && sh.offsetNote && sh.sizeNote) await copyBytes(p0, out, sh.offsetNote, sh.sizeNote, sh.offsetNote, 'ELF notes');
    if (L.headerVersion >= 3 && sh.offsetVmcoreinfo && sh.sizeVmcoreinfo) {
      await copyBytes(p0, out, sh.offsetVmcoreinfo, sh.sizeVmcoreinfo, sh.offsetVmcoreinfo, 'VMCOREINFO');
    }

    // Bitmaps: each part's bits over its own range.
    const twoBitmaps = L.bm2Off !== L.bm1Off;
    const each = twoBitmaps ? (L.bitmapBlocks * bs) / 2 : L.bitmapBlocks * bs;
    await assembleBitmap(parts, maxPfn, (r) => r.layout.bm1Off, L.bm1Off, each, out);
    if (twoBitmaps) await assembleBitmap(parts, maxPfn, (r) => r.layout.bm2Off, L.bm2Off, each, out);

    // Descriptors and data.
    const numDumpable = parts.reduce((s, r) => s + r.layout.descCount, 0);
    const descStart = (1 + L.subHdrBlocks + L.bitmapBlocks) * bs;
    const dataStart = descStart + numDumpable * PAGE_DESC_SIZE;
    const descOut = new SequentialWriter(out, descStart, 1 << 20);
    const dataOut = new SequentialWriter(out, dataStart);
    // makedumpfile writes the zero page first in every part (and here) when
    // dump_level excludes zero pages; descriptors pointing there are zero pages.
    const zeroShared = (dumpLevel & 1) !== 0;
    const zeroOffset = dataStart;
    const zeroDesc = new Uint8Array(PAGE_DESC_SIZE);
    if (zeroShared) {
      const zv = new DataView(zeroDesc.buffer);
      setU64(zv, 0, zeroOffset);
      zv.setUint32(8, bs, true);
      await dataOut.appendZeros(bs);
    }
    let written = 0;
    let zeroPages = 0;
    let dataBytes = 0;
    const desc = new Uint8Array(BATCH * PAGE_DESC_SIZE);
    const dv = new DataView(desc.buffer);
    const pfns = new Float64Array(BATCH);
    const data = new Uint8Array(Math.max(READ_BYTES, bs));
    const states = new Uint8Array(WINDOW);
    for (const r of parts) {
      const { start, end } = r.part!;
      let index = 0;
      let batchN = 0;
      const flush = async (): Promise<void> => {
        if (batchN === 0) return;
        await r.readDescriptors(index, batchN, desc, (i) => pfns[i]!);
        let i = 0;
        while (i < batchN) {
          const o = i * PAGE_DESC_SIZE;
          const off = dv.getUint32(o, true) + dv.getUint32(o + 4, true) * TWO32;
          if (zeroShared && off === zeroOffset) {
            await descOut.append(zeroDesc);
            zeroPages++;
            i++;
            continue;
          }
          // Pages whose stored bytes follow each other: one read.
          let j = i + 1;
          let bytes = dv.getUint32(o + 8, true);
          while (j < batchN) {
            const oj = j * PAGE_DESC_SIZE;
            const offj = dv.getUint32(oj, true) + dv.getUint32(oj + 4, true) * TWO32;
            const sj = dv.getUint32(oj + 8, true);
            if (offj !== off + bytes || (zeroShared && offj === zeroOffset) || bytes + sj > data.length) break;
            bytes += sj;
            j++;
          }
          await readExact(r.source, data, 0, bytes, off, `data of pfn ${hex(pfns[i]!)}`);
          await dataOut.append(data.subarray(0, bytes));
          let newOff = dataOut.position - bytes;
          for (let k = i; k < j; k++) {
            const ok = k * PAGE_DESC_SIZE;
            const size = dv.getUint32(ok + 8, true);
            setU64(dv, ok, newOff);
            newOff += size;
            await descOut.append(desc.subarray(ok, ok + PAGE_DESC_SIZE));
          }
          dataBytes += bytes;
          i = j;
        }
        written += batchN;
        index += batchN;
        batchN = 0;
        opts.onProgress?.({ phase: 'copy', done: written, total: numDumpable });
      };
      for (let w = start; w < end; w += WINDOW) {
        const n = Math.min(WINDOW, end - w);
        await r.pfnStates(w, n, states);
        for (let i = 0; i < n; i++) {
          if (states[i] !== PfnState.PRESENT) continue;
          pfns[batchN++] = w + i;
          if (batchN === BATCH) await flush();
        }
      }
      await flush();
      if (index !== r.layout.descCount) {
        throw new DumpError('DUMP_CORRUPT', `the 2nd bitmap sets ${index} pfns in this part's range, the descriptor table has ${r.layout.descCount}`, {
          file: r.info.file,
          offset: r.layout.bm2Off,
        });
      }
    }

    // eraseinfo of every part, after the data.
    const eraseAt = dataOut.position;
    let eraseBytes = 0;
    for (const r of parts) {
      const s = r.subHeader;
      if (r.layout.headerVersion < 5 || s.sizeEraseinfo === 0) continue;
      for (let done = 0; done < s.sizeEraseinfo; ) {
        const n = Math.min(data.length, s.sizeEraseinfo - done);
        await readExact(r.source, data, 0, n, s.offsetEraseinfo + done, 'eraseinfo');
        await dataOut.append(data.subarray(0, n));
        done += n;
      }
      eraseBytes += s.sizeEraseinfo;
    }
    if (eraseBytes > 0) {
      setU64(khv, KH_OFF.offsetEraseinfo, eraseAt);
      setU64(khv, KH_OFF.sizeEraseinfo, eraseBytes);
    }
    await descOut.drain();
    await dataOut.drain();
    if (L.headerVersion >= 1) await out.write(kh, bs);
    const bytes = dataOut.position;
    await out.setLength(bytes);
    await out.commit();
    sink = undefined;
    return {
      parts: set.info.parts!.map((p) => ({ ...p })),
      output: { file: opts.output, bytes },
      maxPfn,
      pages: written,
      zeroPages,
      dataBytes,
      eraseinfoBytes: eraseBytes,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await sink?.abort();
    await set.close();
  }
}

function headerStatus(r: KdumpReader): number {
  return new DataView(r.rawHeader.buffer, r.rawHeader.byteOffset, DISK_DUMP_HEADER_SIZE).getUint32(DH_OFF.status, true);
}

function setU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v % TWO32, true);
  dv.setUint32(off + 4, Math.floor(v / TWO32), true);
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
