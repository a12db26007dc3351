/**
 * ELF64 core reader for x86_64 /proc/vmcore-style images (and ELF dumps
 * written by makedumpfile -E or dumpsieve -E).
 *
 * - Program headers: PN_XNUM, bounded counts, every PT_LOAD checked against
 *   the file size. Unaligned segments, p_filesz < p_memsz tails and
 *   overlapping segments (first one wins, as in makedumpfile's
 *   paddr_to_offset) are supported.
 * - Pages are located through an extent table in pfn space built once from
 *   the segments; reads are positional and coalesced into large preads.
 */
import { Parser } from 'binary-parser';
import { DumpError } from '../../core/errors.js';
import { bounded, isPowerOfTwo } from '../../core/checked.js';
import { lastAtOrBelow, resolveOverlaps } from '../../core/intervals.js';
import { readExact, type ByteSource } from '../../io/source.js';
import { VmcoreInfo, VMCOREINFO_MAX_BYTES } from '../vmcoreinfo.js';
import { PfnState, type DumpInfo, type DumpReader, type SegmentInfo } from '../types.js';
import {
  EHDR_SIZE,
  ELFCLASS64,
  ELFDATA2LSB,
  ELFMAG,
  EM_X86_64,
  ET_CORE,
  NT_PRSTATUS,
  NT_VMCOREINFO,
  PHDR_SIZE,
  PN_XNUM,
  PT_LOAD,
  PT_NOTE,
  SHDR_SIZE,
  X86_64_PAGE_OFFSET,
  parseNotes,
} from './elf.js';

/** Most program headers accepted (2 Mi: 112 MiB of headers). */
export const MAX_PHNUM = 1 << 21;
/** Largest PT_NOTE content accepted in total. */
export const MAX_NOTES_BYTES = 64 << 20;
const PAGE_SIZE_X86_64 = 4096;

const ehdrParser = new Parser()
  .endianess('little')
  .array('magic', { type: 'uint8', length: 4 })
  .uint8('eiClass')
  .uint8('eiData')
  .uint8('eiVersion')
  .seek(9)
  .uint16('type')
  .uint16('machine')
  .uint32('version')
  .uint64('entry')
  .uint64('phoff')
  .uint64('shoff')
  .uint32('flags')
  .uint16('ehsize')
  .uint16('phentsize')
  .uint16('phnum')
  .uint16('shentsize')
  .uint16('shnum')
  .uint16('shstrndx');

interface RawEhdr {
  magic: number[];
  eiClass: number;
  eiData: number;
  type: number;
  machine: number;
  phoff: bigint;
  shoff: bigint;
  phentsize: number;
  phnum: number;
  shentsize: number;
  shnum: number;
}

/** True if the first bytes look like an ELF64 little-endian file. Never throws. */
export function probeElf(head: Uint8Array): boolean {
  return (
    head.length >= 6 &&
    head[0] === ELFMAG[0] &&
    head[1] === ELFMAG[1] &&
    head[2] === ELFMAG[2] &&
    head[3] === ELFMAG[3]
  );
}

const EXT_FILE = 0; // whole pages at a file position
const EXT_PARTIAL = 1; // pages partly covered: assemble from segments
const EXT_ZERO = 2; // p_memsz tail: RAM without data

interface Piece {
  start: number;
  end: number;
  kind: number;
  base: number;
  seg: number;
}

export class ElfDumpReader implements DumpReader {
  readonly info: DumpInfo;
  private readonly src: ByteSource;
  private readonly ps: number;
  // Extents in pfn space, sorted, disjoint.
  private readonly eStart: Float64Array;
  private readonly eEnd: Float64Array;
  private readonly eKind: Uint8Array;
  private readonly eBase: Float64Array;
  // Segments sorted by paddr (for assembling partial pages).
  private readonly segs: SegmentInfo[];

  private constructor(src: ByteSource, info: DumpInfo, pieces: Piece[], segs: SegmentInfo[]) {
    this.src = src;
    this.info = info;
    this.ps = info.pageSize;
    const n = pieces.length;
    this.eStart = new Float64Array(n);
    this.eEnd = new Float64Array(n);
    this.eKind = new Uint8Array(n);
    this.eBase = new Float64Array(n);
    pieces.forEach((p, i) => {
      this.eStart[i] = p.start;
      this.eEnd[i] = p.end;
      this.eKind[i] = p.kind;
      this.eBase[i] = p.base;
    });
    this.segs = segs.slice().sort((a, b) => a.paddr - b.paddr);
  }

  static async open(src: ByteSource): Promise<ElfDumpReader> {
    const file = src.name;
    if (src.size < EHDR_SIZE) {
      throw new DumpError('DUMP_TRUNCATED', `ELF header needs ${EHDR_SIZE} bytes, file has ${src.size}`, { file, offset: 0 });
    }
    const head = new Uint8Array(EHDR_SIZE);
    await readExact(src, head, 0, EHDR_SIZE, 0, 'ELF header');
    if (!probeElf(head)) throw new DumpError('DUMP_UNSUPPORTED', 'not an ELF file (bad magic)', { file, offset: 0 });
    const h = ehdrParser.parse(Buffer.from(head)) as RawEhdr;
    if (h.eiClass !== ELFCLASS64) throw new DumpError('DUMP_UNSUPPORTED', `ELF class ${h.eiClass}: only ELF64 is supported`, { file, offset: 4 });
    if (h.eiData !== ELFDATA2LSB) throw new DumpError('DUMP_UNSUPPORTED', 'big-endian ELF is not supported', { file, offset: 5 });
    if (h.type !== ET_CORE) throw new DumpError('DUMP_UNSUPPORTED', `ELF type ${h.type} is not ET_CORE (4)`, { file, offset: 16 });
    if (h.machine !== EM_X86_64) throw new DumpError('DUMP_UNSUPPORTED', `ELF machine ${h.machine}: only x86_64 (62) is supported`, { file, offset: 18 });
    if (h.phentsize !== PHDR_SIZE) throw new DumpError('DUMP_CORRUPT', `e_phentsize is ${h.phentsize}, expected ${PHDR_SIZE}`, { file, offset: 54 });

    const phoff = toNumber(h.phoff, 'e_phoff', file, 32);
    let phnum = h.phnum;
    if (phnum === PN_XNUM) {
      const shoff = toNumber(h.shoff, 'e_shoff', file, 40);
      if (shoff === 0 || h.shnum === 0 && h.shentsize === 0) {
        throw new DumpError('DUMP_CORRUPT', 'e_phnum is PN_XNUM but there is no section header 0', { file, offset: 56 });
      }
      const sh = new Uint8Array(SHDR_SIZE);
      await readExact(src, sh, 0, SHDR_SIZE, shoff, 'section header 0 (PN_XNUM)');
      phnum = new DataView(sh.buffer).getUint32(44, true);
    }
    bounded(phnum, MAX_PHNUM, 'program header count', { file, offset: 56 });
    if (phoff + phnum * PHDR_SIZE > src.size) {
      throw new DumpError('DUMP_TRUNCATED', `${phnum} program headers at ${phoff} run past the end of the file (${src.size} bytes)`, {
        file,
        offset: phoff,
      });
    }

    // Program headers, read in bounded chunks.
    const segments: SegmentInfo[] = [];
    const noteRanges: Array<{ offset: number; size: number; index: number }> = [];
    const CHUNK = 1024;
    const buf = new Uint8Array(CHUNK * PHDR_SIZE);
    const dv = new DataView(buf.buffer);
    for (let i0 = 0; i0 < phnum; i0 += CHUNK) {
      const n = Math.min(CHUNK, phnum - i0);
      await readExact(src, buf, 0, n * PHDR_SIZE, phoff + i0 * PHDR_SIZE, 'program headers');
      for (let k = 0; k < n; k++) {
        const i = i0 + k;
        const o = k * PHDR_SIZE;
        const at = phoff + i * PHDR_SIZE;
        const type = dv.getUint32(o, true);
        if (type !== PT_LOAD && type !== PT_NOTE) continue;
        const ctx = { file, offset: at };
        const offset = u64At(dv, o + 8, `program header ${i} p_offset`, ctx);
        const filesz = u64At(dv, o + 32, `program header ${i} p_filesz`, ctx);
        if (offset + filesz > src.size) {
          throw new DumpError(
            'DUMP_TRUNCATED',
            `program header ${i}: ${type === PT_LOAD ? 'PT_LOAD' : 'PT_NOTE'} data [${hexn(offset)}, ${hexn(offset + filesz)}) extends past end of file (${hexn(src.size)})`,
            ctx,
          );
        }
        if (type === PT_NOTE) {
          noteRanges.push({ offset, size: filesz, index: i });
          continue;
        }
        const paddr = u64At(dv, o + 24, `program header ${i} p_paddr`, ctx);
        const memsz = u64At(dv, o + 40, `program header ${i} p_memsz`, ctx);
        if (memsz < filesz) {
          throw new DumpError('DUMP_CORRUPT', `program header ${i}: p_memsz ${hexn(memsz)} is smaller than p_filesz ${hexn(filesz)}`, ctx);
        }
        if (paddr + memsz > 2 ** 52) {
          throw new DumpError('DUMP_CORRUPT', `program header ${i}: physical range ends beyond 2^52 (${hexn(paddr)} + ${hexn(memsz)})`, ctx);
        }
        segments.push({ paddr, vaddr: dv.getBigUint64(o + 16, true), fileOffset: offset, fileSize: filesz, memSize: memsz });
      }
    }

    // Notes.
    const totalNotes = noteRanges.reduce((s, r) => s + r.size, 0);
    bounded(totalNotes, MAX_NOTES_BYTES, 'PT_NOTE size', { file, offset: noteRanges[0]?.offset });
    const notes = new Uint8Array(totalNotes);
    let at = 0;
    let vmcoreinfo: VmcoreInfo | undefined;
    let cpus = 0;
    const kept: Uint8Array[] = [];
    for (const r of noteRanges) {
      const part = notes.subarray(at, at + r.size);
      await readExact(src, part, 0, r.size, r.offset, `PT_NOTE (program header ${r.index})`);
      at += r.size;
      const parsed = parseNotes(part, (off, what) => new DumpError('DUMP_CORRUPT', what, { file, offset: r.offset + off }));
      let usedEnd = 0;
      for (const nt of parsed) {
        usedEnd = Math.min(part.length, nt.descOffset + ((nt.descSize + 3) & ~3));
        if (nt.name === 'CORE' && nt.type === NT_PRSTATUS) cpus++;
        if (nt.name === 'VMCOREINFO' && nt.type === NT_VMCOREINFO) {
          if (nt.descSize > VMCOREINFO_MAX_BYTES) {
            throw new DumpError('DUMP_LIMIT_EXCEEDED', `VMCOREINFO note is ${nt.descSize} bytes, above ${VMCOREINFO_MAX_BYTES}`, {
              file,
              offset: r.offset + nt.descOffset,
            });
          }
          vmcoreinfo = VmcoreInfo.parse(part.subarray(nt.descOffset, nt.descOffset + nt.descSize), {
            file,
            offset: r.offset + nt.descOffset,
          });
        }
      }
      // Keep the notes without the kernel's trailing zero padding.
      kept.push(part.subarray(0, usedEnd));
    }
    const noteBytes = Buffer.concat(kept);

    const pageSize = vmcoreinfo?.pageSize ?? PAGE_SIZE_X86_64;
    if (!isPowerOfTwo(pageSize) || pageSize < 4096 || pageSize > 65536) {
      throw new DumpError('DUMP_CORRUPT', `VMCOREINFO PAGESIZE ${pageSize} is not a supported page size`, { file });
    }
    const pieces = buildExtents(segments, pageSize);
    let maxPfn = 0;
    for (const s of segments) maxPfn = Math.max(maxPfn, Math.ceil((s.paddr + s.memSize) / pageSize));

    const info: DumpInfo = {
      format: 'elf',
      file,
      fileSize: src.size,
      arch: 'x86_64',
      pageSize,
      maxPfn,
      vmcoreinfo,
      notes: noteBytes,
      cpus,
      segments,
      details: {
        phnum,
        'notes offset': noteRanges[0]?.offset ?? 0,
        'page offset': `0x${pageOffsetOf(segments).toString(16)}`,
        'pt_load segments': segments.length,
        'incomplete (e_flags & 1)': (new DataView(head.buffer).getUint32(48, true) & 1) === 1,
      },
    };
    return new ElfDumpReader(src, info, pieces, segments);
  }

  /** Physical-to-virtual offset of the direct map, as makedumpfile derives it from PT_LOAD. */
  get pageOffset(): bigint {
    return pageOffsetOf(this.info.segments ?? []);
  }

  private findExtent(pfn: number): number {
    return lastAtOrBelow(this.eStart, pfn);
  }


  async pfnStates(start: number, count: number, out: Uint8Array): Promise<void> {
    out.fill(PfnState.HOLE, 0, count);
    const end = start + count;
    let i = Math.max(0, this.findExtent(start));
    for (; i < this.eStart.length; i++) {
      const s = this.eStart[i]!;
      if (s >= end) break;
      const e = this.eEnd[i]!;
      if (e <= start) continue;
      const state = this.eKind[i] === EXT_ZERO ? PfnState.ABSENT : PfnState.PRESENT;
      out.fill(state, Math.max(s, start) - start, Math.min(e, end) - start);
    }
  }

  async readPages(pfn: number, count: number, into: Uint8Array, offset = 0): Promise<void> {
    const ps = this.ps;
    let p = pfn;
    const end = pfn + count;
    let i = this.findExtent(p);
    while (p < end) {
      if (i < 0 || p >= this.eEnd[i]!) {
        i++;
        if (i >= this.eStart.length || this.eStart[i]! > p) {
          throw new DumpError('ADDRESS_UNMAPPED', `pfn ${hexn(p)} is not in the image`, { file: this.info.file });
        }
      }
      const n = Math.min(end, this.eEnd[i]!) - p;
      const dst = offset + (p - pfn) * ps;
      const kind = this.eKind[i]!;
      if (kind === EXT_FILE) {
        const pos = this.eBase[i]! + (p - this.eStart[i]!) * ps;
        await readExact(this.src, into, dst, n * ps, pos, `page ${hexn(p)}`);
      } else if (kind === EXT_ZERO) {
        into.fill(0, dst, dst + n * ps);
      } else {
        for (let k = 0; k < n; k++) await this.assemble((p + k) * ps, ps, into, dst + k * ps);
      }
      p += n;
    }
  }

  async readPhys(paddr: number, length: number, into: Uint8Array, offset = 0): Promise<void> {
    const ps = this.ps;
    let a = paddr;
    const end = paddr + length;
    while (a < end) {
      const pfn = Math.floor(a / ps);
      const i = this.findExtent(pfn);
      if (i < 0 || pfn >= this.eEnd[i]!) {
        throw new DumpError('ADDRESS_UNMAPPED', `physical address ${hexn(a)} is not in the image`, { file: this.info.file });
      }
      const extEnd = Math.min(end, this.eEnd[i]! * ps);
      const n = extEnd - a;
      const dst = offset + (a - paddr);
      const kind = this.eKind[i]!;
      if (kind === EXT_FILE) {
        await readExact(this.src, into, dst, n, this.eBase[i]! + (a - this.eStart[i]! * ps), `physical address ${hexn(a)}`);
      } else if (kind === EXT_ZERO) {
        into.fill(0, dst, dst + n);
      } else {
        await this.assemble(a, n, into, dst);
      }
      a = extEnd;
    }
  }

  /** Bytes [paddr, paddr+len) from every segment covering them; uncovered bytes read as zero. */
  private async assemble(paddr: number, len: number, into: Uint8Array, dst: number): Promise<void> {
    into.fill(0, dst, dst + len);
    const end = paddr + len;
    // Later segments first so that the first segment's bytes win.
    const cover = this.segs.filter((s) => s.paddr < end && s.paddr + s.fileSize > paddr);
    for (let k = cover.length - 1; k >= 0; k--) {
      const s = cover[k]!;
      const from = Math.max(paddr, s.paddr);
      const to = Math.min(end, s.paddr + s.fileSize);
      await readExact(this.src, into, dst + (from - paddr), to - from, s.fileOffset + (from - s.paddr), `physical address ${hexn(from)}`);
    }
  }

  close(): Promise<void> {
    return this.src.close();
  }
}

function pageOffsetOf(segments: readonly SegmentInfo[]): bigint {
  // The direct map: a segment whose vaddr is in the kernel half and not the
  // kernel-text mapping; makedumpfile's "page_offset (pt_load)".
  for (const s of segments) {
    if (s.vaddr >= 0xffff800000000000n && s.vaddr < 0xffffffff80000000n) return s.vaddr - BigInt(s.paddr);
  }
  return X86_64_PAGE_OFFSET;
}

function toNumber(v: bigint, what: string, file: string, offset: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DumpError('DUMP_CORRUPT', `${what} is ${v}, beyond 2^53`, { file, offset });
  return Number(v);
}

function u64At(dv: DataView, off: number, what: string, ctx: { file: string; offset: number }): number {
  const lo = dv.getUint32(off, true);
  const hi = dv.getUint32(off + 4, true);
  if (hi >= 0x20_0000) throw new DumpError('DUMP_CORRUPT', `${what} is beyond 2^53`, ctx);
  return hi * 0x1_0000_0000 + lo;
}

function hexn(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * Cut segments into page extents and resolve overlaps: at every pfn the
 * segment that comes first in the program header table wins.
 */
export function buildExtents(segments: readonly SegmentInfo[], ps: number): Piece[] {
  const pieces: Piece[] = [];
  segments.forEach((s, seg) => {
    const fs = s.paddr;
    const fe = s.paddr + s.fileSize;
    const me = s.paddr + s.memSize;
    const firstPage = Math.floor(fs / ps);
    const fileEndPage = Math.ceil(fe / ps);
    const fullStart = Math.ceil(fs / ps);
    const fullEnd = Math.floor(fe / ps);
    if (fe > fs) {
      if (fullEnd > fullStart) {
        if (firstPage < fullStart) pieces.push({ start: firstPage, end: fullStart, kind: EXT_PARTIAL, base: 0, seg });
        pieces.push({ start: fullStart, end: fullEnd, kind: EXT_FILE, base: s.fileOffset + (fullStart * ps - fs), seg });
        if (fileEndPage > fullEnd) pieces.push({ start: fullEnd, end: fileEndPage, kind: EXT_PARTIAL, base: 0, seg });
      } else {
        pieces.push({ start: firstPage, end: fileEndPage, kind: EXT_PARTIAL, base: 0, seg });
      }
    }
    const zeroStart = fe > fs ? fileEndPage : firstPage;
    const zeroEnd = Math.ceil(me / ps);
    if (zeroEnd > zeroStart) pieces.push({ start: zeroStart, end: zeroEnd, kind: EXT_ZERO, base: 0, seg });
  });
  return paint(pieces, ps);
}

/** Resolve overlapping pieces (the lowest segment index wins) into disjoint sorted extents, merged where contiguous. */
function paint(pieces: Piece[], ps: number): Piece[] {
  const r = resolveOverlaps(
    pieces.map((p) => p.start),
    pieces.map((p) => p.end),
    pieces.map((p) => -p.seg),
  );
  const out: Piece[] = [];
  for (let i = 0; i < r.id.length; i++) {
    const src = pieces[r.id[i]!]!;
    const start = r.start[i]!;
    const end = r.end[i]!;
    const base = src.kind === EXT_FILE ? src.base + (start - src.start) * ps : 0;
    const last = out[out.length - 1];
    if (last && last.end === start && last.kind === src.kind && (src.kind !== EXT_FILE || last.base + (last.end - last.start) * ps === base)) {
      last.end = end;
    } else {
      out.push({ start, end, kind: src.kind, base, seg: src.seg });
    }
  }
  return out;
}
