/**
 * A split set (makedumpfile --split) read as one dump. Each part is a
 * kdump-compressed file with the same disk_dump_header, the same notes
 * and full bitmaps, whose sub header says `split = 1` and which pfns
 * [start_pfn_64, end_pfn_64) its descriptor table and page data hold
 * (makedumpfile.c write_kdump_header, store_splitting_info,
 * check_splitting_info). The parts must cover [0, max_mapnr) with no gap
 * and no overlap; each pfn is then read from the part that holds it.
 */
import { DumpError, hex } from '../../core/errors.js';
import { formatRange } from '../../core/rangeset.js';
import type { DumpInfo, DumpReader } from '../types.js';
import { DH_OFF, DISK_DUMP_HEADER_SIZE, DUMP_DH, KH_OFF, subHeaderFieldName, type KdumpSubHeader } from './header.js';
import type { KdumpReader } from './reader.js';

/** disk_dump_header field holding byte offset `o` (for messages). */
function headerField(o: number): string {
  const names: Array<[number, string]> = [
    [DH_OFF.signature, 'signature'],
    [DH_OFF.headerVersion, 'header_version'],
    [DH_OFF.utsname, 'utsname'],
    [DH_OFF.timestamp, 'timestamp'],
    [DH_OFF.status, 'status'],
    [DH_OFF.blockSize, 'block_size'],
    [DH_OFF.subHdrSize, 'sub_hdr_size'],
    [DH_OFF.bitmapBlocks, 'bitmap_blocks'],
    [DH_OFF.maxMapnr, 'max_mapnr'],
    [DH_OFF.totalRamBlocks, 'total_ram_blocks'],
    [DH_OFF.deviceBlocks, 'device_blocks'],
    [DH_OFF.writtenBlocks, 'written_blocks'],
    [DH_OFF.currentCpu, 'current_cpu'],
    [DH_OFF.nrCpus, 'nr_cpus'],
  ];
  let name = 'signature';
  for (const [off, n] of names) if (o >= off) name = n;
  return name;
}

function versionOf(r: KdumpReader): number {
  return new DataView(r.rawHeader.buffer, r.rawHeader.byteOffset, DISK_DUMP_HEADER_SIZE).getInt32(DH_OFF.headerVersion, true);
}

/** Sub-header fields every part shares (the split range and eraseinfo are per part). */
const SHARED_SUB_FIELDS: Array<keyof KdumpSubHeader> = [
  'physBase',
  'dumpLevel',
  'offsetVmcoreinfo',
  'sizeVmcoreinfo',
  'offsetNote',
  'sizeNote',
  'maxMapnr64',
];

export class SplitKdumpReader implements DumpReader {
  readonly info: DumpInfo;
  /** Parts in pfn order. */
  readonly parts: readonly KdumpReader[];

  private constructor(parts: KdumpReader[], info: DumpInfo) {
    this.parts = parts;
    this.info = info;
  }

  /**
   * Check that `readers` (opened with `splitPart`) form one split set and
   * join them. Fails with one line naming the part at fault; the caller
   * closes the readers then.
   */
  static join(readers: readonly KdumpReader[]): SplitKdumpReader {
    if (readers.length === 0) throw new RangeError('SplitKdumpReader.join: no parts');
    for (const r of readers) {
      if (!r.part) {
        throw new DumpError('DUMP_UNSUPPORTED', 'not a part of a split dump (its sub header says split = 0): give a split set, or one whole dump', {
          file: r.info.file,
          offset: r.info.pageSize + KH_OFF.split,
        });
      }
    }
    const first = readers[0]!;
    for (const r of readers.slice(1)) {
      // makedumpfile compares the whole disk_dump_header (store_splitting_info);
      // the incomplete flag may differ between parts written in parallel.
      const a = first.rawHeader;
      const b = r.rawHeader;
      for (let o = 0; o < DISK_DUMP_HEADER_SIZE; o++) {
        const mask = o === DH_OFF.status ? ~DUMP_DH.COMPRESSED_INCOMPLETE & 0xff : 0xff;
        if ((a[o]! & mask) !== (b[o]! & mask)) {
          throw new DumpError('DUMP_CORRUPT', `disk_dump_header differs from ${first.info.file}'s in ${headerField(o)}: not a part of the same dump`, {
            file: r.info.file,
            offset: o,
          });
        }
      }
      for (const k of SHARED_SUB_FIELDS) {
        if (r.subHeader[k] !== first.subHeader[k]) {
          throw new DumpError(
            'DUMP_CORRUPT',
            `${subHeaderFieldName(k)} is ${r.subHeader[k]}, ${first.info.file} says ${first.subHeader[k]}: not a part of the same dump`,
            { file: r.info.file, offset: r.info.pageSize + KH_OFF[k] },
          );
        }
      }
      if (Buffer.compare(Buffer.from(r.info.notes), Buffer.from(first.info.notes)) !== 0) {
        throw new DumpError('DUMP_CORRUPT', `ELF notes differ from ${first.info.file}'s: not a part of the same dump`, {
          file: r.info.file,
          offset: r.subHeader.offsetNote,
        });
      }
    }

    const sorted = [...readers].sort((x, y) => x.part!.start - y.part!.start || x.part!.end - y.part!.end);
    const maxPfn = first.info.maxPfn;
    const rangeOf = (r: KdumpReader): string => `pfns ${formatRange(r.part!.start, r.part!.end)}`;
    const at = (r: KdumpReader): { file: string; offset: number } => ({
      file: r.info.file,
      offset: r.info.pageSize + (versionOf(r) >= 6 ? KH_OFF.startPfn64 : KH_OFF.startPfn),
    });
    let end = 0;
    let prev: KdumpReader | undefined;
    for (const r of sorted) {
      const p = r.part!;
      if (p.start > end) {
        throw new DumpError('DUMP_TRUNCATED', `this part holds ${rangeOf(r)}, but no part given holds pfns ${formatRange(end, p.start)}: a part of the split set is missing`, at(r));
      }
      if (p.start < end) {
        throw new DumpError(
          'DUMP_CORRUPT',
          prev && prev.info.file === r.info.file
            ? `given twice (${rangeOf(r)})`
            : `this part holds ${rangeOf(r)}, which overlaps ${prev?.info.file ?? 'another part'} (${prev ? rangeOf(prev) : ''}): not parts of one split set`,
          at(r),
        );
      }
      end = p.end;
      prev = r;
    }
    if (end < maxPfn) {
      throw new DumpError('DUMP_TRUNCATED', `the parts given end at pfn ${hex(end)}, but max_mapnr is ${hex(maxPfn)}: a part of the split set is missing`, at(prev!));
    }

    const base = first.info;
    const compressions = new Set(sorted.map((r) => r.info.compression ?? 'none'));
    compressions.delete('none');
    const dumped = sorted.reduce((s, r) => s + Number(r.info.details?.['dumped pages'] ?? 0), 0);
    const erase = sorted.map((r) => r.info.eraseinfo).filter((e): e is string => e !== undefined);
    const warnings = sorted.flatMap((r) => (r.info.warnings ?? []).map((w) => `${r.info.file}: ${w}`));
    const info: DumpInfo = {
      ...base,
      format: base.format,
      file: sorted.map((r) => r.info.file).join(' '),
      fileSize: sorted.reduce((s, r) => s + r.info.fileSize, 0),
      compression: compressions.size === 0 ? 'none' : compressions.size === 1 ? [...compressions][0] : 'mixed',
      eraseinfo: erase.length ? erase.join('') : undefined,
      parts: sorted.map((r) => ({ file: r.info.file, startPfn: r.part!.start, endPfn: r.part!.end, bytes: r.info.fileSize })),
      warnings: warnings.length ? warnings : undefined,
      details: {
        ...base.details,
        'split parts': sorted.length,
        'dumped pages': dumped,
      },
    };
    delete info.details!['split part'];
    return new SplitKdumpReader(sorted, info);
  }

  /** The parts holding pfns [start, end), with the sub-range each holds. */
  private *spans(start: number, end: number): Generator<{ r: KdumpReader; from: number; to: number }> {
    for (const r of this.parts) {
      const p = r.part!;
      const from = Math.max(start, p.start);
      const to = Math.min(end, p.end);
      if (from < to) yield { r, from, to };
    }
  }

  async pfnStates(start: number, count: number, out: Uint8Array): Promise<void> {
    out.fill(0, 0, count);
    for (const { r, from, to } of this.spans(start, start + count)) {
      await r.pfnStates(from, to - from, out.subarray(from - start, to - start));
    }
  }

  async readPages(pfn: number, count: number, into: Uint8Array, offset = 0): Promise<void> {
    const ps = this.info.pageSize;
    if (pfn < 0 || pfn + count > this.info.maxPfn) {
      throw new DumpError('ADDRESS_UNMAPPED', `pfn ${hex(Math.max(pfn, this.info.maxPfn))} is beyond max_mapnr ${hex(this.info.maxPfn)}`, { file: this.info.file });
    }
    for (const { r, from, to } of this.spans(pfn, pfn + count)) {
      await r.readPages(from, to - from, into, offset + (from - pfn) * ps);
    }
  }

  async readPhys(paddr: number, length: number, into: Uint8Array, offset = 0): Promise<void> {
    const ps = this.info.pageSize;
    let a = paddr;
    const end = paddr + length;
    while (a < end) {
      const pfn = Math.floor(a / ps);
      const part = this.parts.find((r) => pfn >= r.part!.start && pfn < r.part!.end);
      if (!part) {
        throw new DumpError('ADDRESS_UNMAPPED', `physical address ${hex(a)} is beyond max_mapnr ${hex(this.info.maxPfn)}`, { file: this.info.file });
      }
      const stop = Math.min(end, part.part!.end * ps);
      await part.readPhys(a, stop - a, into, offset + (a - paddr));
      a = stop;
    }
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const r of this.parts) await r.close().catch((e: unknown) => errors.push(e));
    if (errors.length) throw errors[0];
  }
}
