/**
 * ELF64 core reader for x86_64 /proc/vmcore-style images (and ELF dumps
 * written by makedumpfile -E or dumpsieve -E).
 *
 * - Program headers: PN_XNUM, bounded counts, every PT_LOAD checked against
 *   the file size. Unaligned segments, p_filesz < p_memsz tails and
 *   overlapping segments (first one wins, as in makedumpfile's
 *   paddr_to_offset) are supported.
 * - The segments become one table of sorted, disjoint byte extents of the
 *   physical address space (typed columns, 24 bytes each, built while the
 *   headers are read); reads are positional and coalesced into large
 *   preads. Memory grows with the number of extents only, never with
 *   what the headers claim, and the address space a file may describe is
 *   bounded by its size (pfnSpanLimit).
 */
import { Parser } from 'binary-parser';
import { DumpError } from '../../core/errors.js';
import { bounded, isPowerOfTwo, u64 } from '../../core/checked.js';
import { lastAtOrBelow, resolveOverlaps } from '../../core/intervals.js';
import { readExact, type ByteSource } from '../../io/source.js';
import { VmcoreInfo, VMCOREINFO_MAX_BYTES } from '../vmcoreinfo.js';
import { MAX_LISTED_SEGMENTS, PfnState, pfnSpanLimit, type DumpInfo, type DumpReader, type SegmentInfo } from '../types.js';
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

/**
 * Most out-of-order or overlapping PT_LOAD data ranges resolved (first one
 * wins at every byte). Sorted, disjoint tables (what /proc/vmcore,
 * makedumpfile -E, QEMU and dumpsieve write) have no such limit.
 */
export const MAX_UNORDERED_EXTENTS = 1 << 18;

/**
 * The physical address space as sorted, disjoint byte extents, each with
 * the file offset of its first byte, or -1 for RAM without data (a
 * p_memsz tail). Typed columns: 24 bytes per extent whatever the count.
 * Appended in program-header order; extents that continue each other in
 * memory and in the file are merged.
 */
class ExtentTable {
  start: Float64Array;
  end: Float64Array;
  file: Float64Array;
  n = 0;
  /** False once an extent starts before the end of an earlier one. */
  ordered = true;
  private maxEnd = 0;

  constructor(capacity: number) {
    const c = Math.max(16, capacity);
    this.start = new Float64Array(c);
    this.end = new Float64Array(c);
    this.file = new Float64Array(c);
  }

  push(s: number, e: number, f: number): void {
    if (e <= s) return;
    const last = this.n - 1;
    if (s < this.maxEnd) this.ordered = false;
    else if (last >= 0 && this.end[last] === s) {
      const lf = this.file[last]!;
      if ((f < 0 && lf < 0) || (f >= 0 && lf >= 0 && lf + (s - this.start[last]!) === f)) {
        this.end[last] = e;
        this.maxEnd = e;
        return;
      }
    }
    if (this.n === this.start.length) this.grow();
    this.start[this.n] = s;
    this.end[this.n] = e;
    this.file[this.n] = f;
    this.n++;
    if (e > this.maxEnd) this.maxEnd = e;
  }

  private grow(): void {
    const c = Math.ceil(this.start.length * 1.5);
    const g = (a: Float64Array): Float64Array => {
      const b = new Float64Array(c);
      b.set(a);
      return b;
    };
    this.start = g(this.start);
    this.end = g(this.end);
    this.file = g(this.file);
  }

  /** Drop unused capacity. */
  trim(): void {
    if (this.start.length === this.n) return;
    this.start = this.start.slice(0, this.n);
    this.end = this.end.slice(0, this.n);
    this.file = this.file.slice(0, this.n);
  }

  /** Resolve overlaps (the extent appended first wins at every byte) into sorted, disjoint extents. */
  resolve(): void {
    const n = this.n;
    const prio = new Float64Array(n);
    for (let i = 0; i < n; i++) prio[i] = -i;
    const r = resolveOverlaps(this.start.subarray(0, n), this.end.subarray(0, n), prio);
    const out = new ExtentTable(r.id.length);
    for (let k = 0; k < r.id.length; k++) {
      const id = r.id[k]!;
      const s = r.start[k]!;
      const f = this.file[id]!;
      out.push(s, r.end[k]!, f < 0 ? -1 : f + (s - this.start[id]!));
    }
    out.trim();
    this.start = out.start;
    this.end = out.end;
    this.file = out.file;
    this.n = out.n;
    this.ordered = true;
  }
}

export class ElfDumpReader implements DumpReader {
  readonly info: DumpInfo;
  private readonly src: ByteSource;
  private readonly ps: number;
  private readonly ext: ExtentTable;

  private constructor(src: ByteSource, info: DumpInfo, ext: ExtentTable) {
    this.src = src;
    this.info = info;
    this.ps = info.pageSize;
    this.ext = ext;
  }

  static async open(src: ByteSource): Promise<ElfDumpReader> {
    const file = src.name;
    const { head, h } = await readEhdr(src);
    const { phoff, phnum } = await programHeaderTable(src, h);
    const ph = await readProgramHeaders(src, phoff, phnum);
    ph.finishExtents(file);
    const notes = await readNoteSegments(src, ph.notes);
    const pageSize = notes.vmcoreinfo?.pageSize ?? PAGE_SIZE_X86_64;
    if (!isPowerOfTwo(pageSize) || pageSize < 4096 || pageSize > 65536) {
      throw new DumpError('DUMP_CORRUPT', `VMCOREINFO PAGESIZE ${pageSize} is not a supported page size`, { file });
    }
    const maxPfn = Math.ceil(ph.physEnd / pageSize);
    const limit = pfnSpanLimit(src.storedBytes ?? src.size);
    if (maxPfn > limit) {
      throw new DumpError(
        'DUMP_LIMIT_EXCEEDED',
        `program header ${ph.physEndIndex}: PT_LOAD ends at physical address ${hexn(ph.physEnd)} (pfn ${hexn(maxPfn)}), beyond the ${hexn(limit)} pfns a file of ${src.storedBytes ?? src.size} bytes may describe`,
        { file, offset: ph.physEndAt },
      );
    }
    const pageOffset = ph.pageOffset ?? X86_64_PAGE_OFFSET;
    const notesOffset = ph.notes[0]?.offset ?? 0;
    const info: DumpInfo = {
      format: 'elf',
      file,
      fileSize: src.size,
      arch: 'x86_64',
      pageSize,
      maxPfn,
      vmcoreinfo: notes.vmcoreinfo,
      notes: notes.bytes,
      cpus: notes.cpus,
      segments: ph.listed,
      segmentCount: ph.loads,
      notesOffset,
      pageOffset,
      details: {
        phnum,
        'notes offset': notesOffset,
        'page offset': `0x${pageOffset.toString(16)}`,
        'pt_load segments': ph.loads,
        'incomplete (e_flags & 1)': (new DataView(head.buffer).getUint32(48, true) & 1) === 1,
      },
    };
    const reader = new ElfDumpReader(src, info, ph.ext);
    reader.directMap = pageOffset;
    return reader;
  }

  private directMap: bigint = X86_64_PAGE_OFFSET;

  /** Physical-to-virtual offset of the direct map, as makedumpfile derives it from PT_LOAD. */
  get pageOffset(): bigint {
    return this.directMap;
  }

  async pfnStates(start: number, count: number, out: Uint8Array): Promise<void> {
    out.fill(PfnState.HOLE, 0, count);
    const ps = this.ps;
    const { start: es, end: ee, file: ef, n } = this.ext;
    const lo = start * ps;
    const hi = (start + count) * ps;
    let i = Math.max(0, lastAtOrBelow(es.subarray(0, n), lo));
    for (; i < n; i++) {
      const s = Math.max(es[i]!, lo);
      if (s >= hi) break;
      const e = Math.min(ee[i]!, hi);
      if (e <= s) continue;
      const p0 = Math.floor(s / ps) - start;
      const p1 = Math.ceil(e / ps) - start; // exclusive
      if (ef[i]! >= 0) {
        out.fill(PfnState.PRESENT, p0, p1);
        continue;
      }
      // RAM without data: pages shared with data stay PRESENT.
      if (out[p0] === PfnState.HOLE) out[p0] = PfnState.ABSENT;
      if (p1 - 1 > p0 && out[p1 - 1] === PfnState.HOLE) out[p1 - 1] = PfnState.ABSENT;
      if (p1 - 1 > p0 + 1) out.fill(PfnState.ABSENT, p0 + 1, p1 - 1);
    }
  }

  readPages(pfn: number, count: number, into: Uint8Array, offset = 0): Promise<void> {
    return this.copy(pfn * this.ps, count * this.ps, into, offset, (pfn) => `pfn ${hexn(pfn)} is not in the image`);
  }

  readPhys(paddr: number, length: number, into: Uint8Array, offset = 0): Promise<void> {
    return this.copy(paddr, length, into, offset, (_pfn, addr) => `physical address ${hexn(addr)} is not in the image`);
  }

  /**
   * Bytes [a, a+len) of physical memory into `into` at `dst`: file data
   * where a segment has it, zeros for p_memsz tails and for the uncovered
   * bytes of pages a segment covers in part. A page no segment touches
   * fails with ADDRESS_UNMAPPED.
   */
  private async copy(a: number, len: number, into: Uint8Array, dst: number, missing: (pfn: number, addr: number) => string): Promise<void> {
    const ps = this.ps;
    const { start: es, end: ee, file: ef, n } = this.ext;
    const end = a + len;
    let p = a;
    let i = lastAtOrBelow(es.subarray(0, n), p);
    if (i >= 0 && ee[i]! <= p) i++;
    if (i < 0) i = 0;
    while (p < end) {
      if (i < n && es[i]! <= p) {
        const e = Math.min(end, ee[i]!);
        const f = ef[i]!;
        const d = dst + (p - a);
        const at = p;
        if (f >= 0) await readExact(this.src, into, d, e - p, f + (p - es[i]!), () => `physical address ${hexn(at)}`);
        else into.fill(0, d, d + (e - p));
        p = e;
        i++;
        continue;
      }
      // A gap up to the next extent (or the end): zeros, unless a page in it
      // is touched by no extent at all (its first page may share bytes with
      // the extent before, its last with the extent after).
      const g = Math.min(end, i < n ? es[i]! : end);
      const p0 = Math.floor(p / ps);
      const p1 = Math.ceil(g / ps) - 1;
      const bad = !this.touches(p0) ? p0 : p1 - p0 >= 2 ? p0 + 1 : p1 > p0 && !this.touches(p1) ? p1 : -1;
      if (bad >= 0) throw new DumpError('ADDRESS_UNMAPPED', missing(bad, Math.max(p, bad * ps)), { file: this.info.file });
      into.fill(0, dst + (p - a), dst + (g - a));
      p = g;
    }
  }

  /** True if any extent covers a byte of page `pfn`. */
  private touches(pfn: number): boolean {
    const { start: es, end: ee, n } = this.ext;
    const lo = pfn * this.ps;
    const i = lastAtOrBelow(es.subarray(0, n), lo + this.ps - 1);
    return i >= 0 && ee[i]! > lo;
  }

  close(): Promise<void> {
    return this.src.close();
  }
}

/** The ELF header, checked to be an x86_64 ELF64 little-endian core file. */
async function readEhdr(src: ByteSource): Promise<{ head: Uint8Array; h: RawEhdr }> {
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
  return { head, h };
}

/**
 * Where the program headers are and how many: e_phnum, or section header
 * 0's sh_info when e_phnum is PN_XNUM. The table must lie in the file
 * before anything is sized from the count.
 */
async function programHeaderTable(src: ByteSource, h: RawEhdr): Promise<{ phoff: number; phnum: number }> {
  const file = src.name;
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
  return { phoff, phnum };
}

/** A PT_NOTE segment: its data in the file and its program header's index. */
interface NoteRange {
  offset: number;
  size: number;
  index: number;
}

/** What the program headers say, gathered in one pass: PT_LOADs straight into the extent table, PT_NOTEs listed. */
class ProgramHeaders {
  readonly ext: ExtentTable;
  readonly listed: SegmentInfo[] = [];
  loads = 0;
  /** p_vaddr - p_paddr of the first PT_LOAD in the direct map. */
  pageOffset: bigint | undefined;
  /** The highest end of physical memory and the program header that has it. */
  physEnd = 0;
  physEndAt = 0;
  physEndIndex = 0;
  /** The first PT_LOAD that overlaps or precedes an earlier one. */
  private unorderedAt: { index: number; offset: number } | undefined;
  readonly notes: NoteRange[] = [];

  constructor(
    private readonly src: ByteSource,
    phnum: number,
  ) {
    this.ext = new ExtentTable(phnum);
  }

  /** Program header i (at file offset `at`), at `o` of `dv`. */
  add(i: number, at: number, dv: DataView, o: number): void {
    const type = dv.getUint32(o, true);
    if (type !== PT_LOAD && type !== PT_NOTE) return;
    const src = this.src;
    const ctx = { file: src.name, offset: at };
    const offset = u64(dv, o + 8, `program header ${i} p_offset`, ctx);
    const filesz = u64(dv, o + 32, `program header ${i} p_filesz`, ctx);
    if (offset + filesz > src.size) {
      throw new DumpError(
        'DUMP_TRUNCATED',
        `program header ${i}: ${type === PT_LOAD ? 'PT_LOAD' : 'PT_NOTE'} data [${hexn(offset)}, ${hexn(offset + filesz)}) extends past end of file (${hexn(src.size)})`,
        ctx,
      );
    }
    if (type === PT_NOTE) this.notes.push({ offset, size: filesz, index: i });
    else this.addLoad(i, at, dv, o, offset, filesz);
  }

  private addLoad(i: number, at: number, dv: DataView, o: number, offset: number, filesz: number): void {
    const ctx = { file: this.src.name, offset: at };
    const paddr = u64(dv, o + 24, `program header ${i} p_paddr`, ctx);
    const memsz = u64(dv, o + 40, `program header ${i} p_memsz`, ctx);
    if (memsz < filesz) {
      throw new DumpError('DUMP_CORRUPT', `program header ${i}: p_memsz ${hexn(memsz)} is smaller than p_filesz ${hexn(filesz)}`, ctx);
    }
    if (paddr + memsz > 2 ** 52) {
      throw new DumpError('DUMP_CORRUPT', `program header ${i}: physical range ends beyond 2^52 (${hexn(paddr)} + ${hexn(memsz)})`, ctx);
    }
    const vaddr = dv.getBigUint64(o + 16, true);
    if (this.listed.length < MAX_LISTED_SEGMENTS) this.listed.push({ paddr, vaddr, fileOffset: offset, fileSize: filesz, memSize: memsz });
    // The direct map: a segment in the kernel half below the kernel-text
    // mapping; makedumpfile's "page_offset (pt_load)".
    if (this.pageOffset === undefined && vaddr >= 0xffff800000000000n && vaddr < 0xffffffff80000000n) this.pageOffset = vaddr - BigInt(paddr);
    if (paddr + memsz > this.physEnd) {
      this.physEnd = paddr + memsz;
      this.physEndAt = at;
      this.physEndIndex = i;
    }
    const ext = this.ext;
    const wasOrdered = ext.ordered;
    ext.push(paddr, paddr + filesz, offset);
    ext.push(paddr + filesz, paddr + memsz, -1);
    if (wasOrdered && !ext.ordered) this.unorderedAt = { index: i, offset: at };
    this.loads++;
  }

  /** Sorted, disjoint extents: out-of-order tables resolved (up to MAX_UNORDERED_EXTENTS), others trimmed. */
  finishExtents(file: string): void {
    const ext = this.ext;
    if (ext.ordered) {
      ext.trim();
      return;
    }
    if (ext.n > MAX_UNORDERED_EXTENTS) {
      throw new DumpError(
        'DUMP_LIMIT_EXCEEDED',
        `program header ${this.unorderedAt!.index}: PT_LOAD overlaps or precedes an earlier one, and out-of-order tables are resolved only up to ${MAX_UNORDERED_EXTENTS} ranges (this one has ${ext.n})`,
        { file, offset: this.unorderedAt!.offset },
      );
    }
    ext.resolve();
  }
}

/** Program headers [0, phnum) at phoff, read in bounded chunks. */
async function readProgramHeaders(src: ByteSource, phoff: number, phnum: number): Promise<ProgramHeaders> {
  const ph = new ProgramHeaders(src, phnum);
  const CHUNK = 1024;
  const buf = new Uint8Array(CHUNK * PHDR_SIZE);
  const dv = new DataView(buf.buffer);
  for (let i0 = 0; i0 < phnum; i0 += CHUNK) {
    const n = Math.min(CHUNK, phnum - i0);
    await readExact(src, buf, 0, n * PHDR_SIZE, phoff + i0 * PHDR_SIZE, 'program headers');
    for (let k = 0; k < n; k++) ph.add(i0 + k, phoff + (i0 + k) * PHDR_SIZE, dv, k * PHDR_SIZE);
  }
  return ph;
}

/** The PT_NOTE segments' notes, packed without the kernel's trailing zero padding, and what they say. */
async function readNoteSegments(src: ByteSource, ranges: readonly NoteRange[]): Promise<{ bytes: Uint8Array; vmcoreinfo: VmcoreInfo | undefined; cpus: number }> {
  const file = src.name;
  const total = ranges.reduce((s, r) => s + r.size, 0);
  bounded(total, MAX_NOTES_BYTES, 'PT_NOTE size', { file, offset: ranges[0]?.offset });
  const notes = new Uint8Array(total);
  let at = 0;
  let vmcoreinfo: VmcoreInfo | undefined;
  let cpus = 0;
  let kept = 0;
  for (const r of ranges) {
    const part = notes.subarray(at, at + r.size);
    await readExact(src, part, 0, r.size, r.offset, `PT_NOTE (program header ${r.index})`);
    const found = scanCoreNotes(part, file, r.offset);
    cpus += found.cpus;
    vmcoreinfo = found.vmcoreinfo ?? vmcoreinfo;
    notes.copyWithin(kept, at, at + found.used);
    kept += found.used;
    at += r.size;
  }
  return { bytes: notes.subarray(0, kept), vmcoreinfo, cpus };
}

/** What a reader takes from a buffer of ELF notes. */
export interface CoreNotes {
  /** NT_PRSTATUS notes: one per CPU. */
  cpus: number;
  /** The (last) VMCOREINFO note, parsed. */
  vmcoreinfo: VmcoreInfo | undefined;
  /** Bytes up to the end of the last note (the rest is padding). */
  used: number;
}

/**
 * Walk the notes of `raw` (found at file offset `base` of `file`): count
 * the CPUs and parse VMCOREINFO. Damage is a DumpError at its offset.
 */
export function scanCoreNotes(raw: Uint8Array, file: string, base: number): CoreNotes {
  const parsed = parseNotes(raw, (off, what) => new DumpError('DUMP_CORRUPT', what, { file, offset: base + off }));
  let used = 0;
  let cpus = 0;
  let vmcoreinfo: VmcoreInfo | undefined;
  for (const n of parsed) {
    used = Math.min(raw.length, n.descOffset + ((n.descSize + 3) & ~3));
    if (n.name === 'CORE' && n.type === NT_PRSTATUS) cpus++;
    if (n.name === 'VMCOREINFO' && n.type === NT_VMCOREINFO) {
      const where = { file, offset: base + n.descOffset };
      if (n.descSize > VMCOREINFO_MAX_BYTES) {
        throw new DumpError('DUMP_LIMIT_EXCEEDED', `VMCOREINFO note is ${n.descSize} bytes, above ${VMCOREINFO_MAX_BYTES}`, where);
      }
      vmcoreinfo = VmcoreInfo.parse(raw.subarray(n.descOffset, n.descOffset + n.descSize), where);
    }
  }
  return { cpus, vmcoreinfo, used };
}

function toNumber(v: bigint, what: string, file: string, offset: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DumpError('DUMP_CORRUPT', `${what} is ${v}, beyond 2^53`, { file, offset });
  return Number(v);
}

function hexn(n: number): string {
  return `0x${n.toString(16)}`;
}
