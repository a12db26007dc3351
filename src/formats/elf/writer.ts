/**
 * ELF dump writer (-E). One PT_LOAD per run of kept pages: exclusion is
 * exact, so an excluded page is never read nor written (makedumpfile -E
 * keeps excluded runs shorter than 256 pages). PN_XNUM is used when the
 * program header count reaches 0xffff.
 *
 * Layout: Ehdr | Phdr[phnum] | [Shdr 0 when PN_XNUM] | notes | page data
 * (page data starts page-aligned so the file stays sparse-friendly).
 *
 * After a write error of a file (the disk full), salvage() keeps what was
 * written, as makedumpfile does: the ELF header's e_flags gets
 * DUMP_ELF_INCOMPLETE, program headers describe exactly the pages that
 * reached the file (the last run cut to them), and the program headers of
 * runs never written stay PT_NULL.
 */
import { SequentialWriter, WatchedSink, writeZeros, type PositionalSink } from '../../io/sink.js';
import type { BitmapWindow, DumpWriter, OutputPlan, SalvageSummary, WriteSummary } from '../types.js';
import {
  EHDR_SIZE,
  PF_R,
  PF_W,
  PF_X,
  PHDR_SIZE,
  PN_XNUM,
  PT_LOAD,
  PT_NOTE,
  SHDR_SIZE,
  encodeEhdr,
  encodePhdr,
  encodeXnumShdr,
} from './elf.js';

/**
 * Page data per write, double-buffered, as in the kdump writer: 256 KiB to
 * a file, 512 KiB to a -F stream, where each write is a record.
 */
const DATA_FLUSH_FILE = 256 << 10;
const DATA_FLUSH_STREAM = 512 << 10;
const PHDR_FLUSH = 4096;
/** e_flags bit makedumpfile sets in an ELF dump cut short (check_and_modify_elf_headers()). */
export const DUMP_ELF_INCOMPLETE = 0x1;
const TWO32 = 0x1_0000_0000;

/**
 * Where the parts of an ELF dump go for `phnum` program headers (the
 * PT_NOTE and one PT_LOAD per run) and `notesSize` bytes of notes: the
 * notes after the headers (and the PN_XNUM section header), page data from
 * the next page boundary.
 */
export function elfLayout(phnum: number, notesSize: number, pageSize: number): { notesAt: number; dataStart: number } {
  const notesAt = EHDR_SIZE + phnum * PHDR_SIZE + (phnum >= PN_XNUM ? SHDR_SIZE : 0);
  return { notesAt, dataStart: Math.ceil((notesAt + notesSize) / pageSize) * pageSize };
}

/** A u64 field of an encoded program header (values below 2^53). */
function phdrU64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;
}

export class ElfDumpWriter implements DumpWriter {
  private plan: OutputPlan | undefined;
  private phnum = 0;
  private dataStart = 0;
  /** Page data (write-behind). */
  private data: SequentialWriter | undefined;
  // Current run.
  private runPfn = -1;
  private runEnd = -1;
  private runOffset = 0;
  private runs = 0;
  // Buffered program headers.
  private readonly phBuf = new Uint8Array(PHDR_FLUSH * PHDR_SIZE);
  private phFill = 0;
  private phFirst = 0;
  private pages = 0;
  /** Pages described by program headers already written. */
  private flushedPages = 0;
  private shoff = 0;
  private readonly sink: WatchedSink;

  constructor(sink: PositionalSink) {
    this.sink = new WatchedSink(sink);
  }

  async begin(plan: OutputPlan): Promise<void> {
    this.plan = plan;
    this.phnum = 1 + plan.keptRuns;
    const xnum = this.phnum >= PN_XNUM;
    const { notesAt, dataStart } = elfLayout(this.phnum, plan.notes.length, plan.pageSize);
    this.dataStart = dataStart;
    this.data = new SequentialWriter(this.sink, this.dataStart, this.sink.rewritable ? DATA_FLUSH_FILE : DATA_FLUSH_STREAM);
    const shoff = xnum ? EHDR_SIZE + this.phnum * PHDR_SIZE : 0;
    this.shoff = shoff;
    await this.sink.write(encodeEhdr({ phnum: this.phnum, shoff, shnum: xnum ? 1 : 0 }), 0);
    // In a file, reserve the program header table now: after the disk fills
    // up, salvage() must still be able to write it in place.
    if (this.sink.rewritable) await writeZeros(this.sink, EHDR_SIZE + PHDR_SIZE, (this.phnum - 1) * PHDR_SIZE);
    if (xnum) await this.sink.write(encodeXnumShdr(this.phnum), shoff);
    const note = new Uint8Array(PHDR_SIZE);
    encodePhdr(note, 0, { type: PT_NOTE, flags: 0, offset: notesAt, vaddr: 0n, paddr: 0, filesz: plan.notes.length, memsz: plan.notes.length, align: 0 });
    await this.sink.write(note, EHDR_SIZE);
    if (plan.notes.length) await this.sink.write(plan.notes, notesAt);
    this.phFirst = 1;
  }

  async bitmaps(_window: BitmapWindow): Promise<void> {
    // ELF has no bitmaps: holes and exclusions are gaps between PT_LOADs.
  }

  async writePages(pfn: number, count: number, data: Uint8Array, zero?: Uint8Array): Promise<void> {
    const ps = this.requirePlan().pageSize;
    let i = 0;
    while (i < count) {
      if (zero && zero[i]) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < count && !(zero && zero[j])) j++;
      const p = pfn + i;
      if (p !== this.runEnd) {
        await this.closeRun();
        this.runPfn = p;
        this.runEnd = p;
        this.runOffset = this.requireData().position;
      }
      await this.requireData().append(data.subarray(i * ps, j * ps));
      this.runEnd += j - i;
      this.pages += j - i;
      i = j;
    }
  }

  private async closeRun(): Promise<void> {
    if (this.runPfn < 0 || this.runEnd === this.runPfn) return;
    const plan = this.requirePlan();
    if (1 + this.runs + 1 > this.phnum) {
      throw new Error(`ElfDumpWriter: more PT_LOAD runs than planned (${plan.keptRuns})`);
    }
    const ps = plan.pageSize;
    const paddr = this.runPfn * ps;
    const size = (this.runEnd - this.runPfn) * ps;
    encodePhdr(this.phBuf, this.phFill * PHDR_SIZE, {
      type: PT_LOAD,
      flags: PF_R | PF_W | PF_X,
      offset: this.runOffset,
      vaddr: plan.pageOffset + BigInt(paddr),
      paddr,
      filesz: size,
      memsz: size,
      align: 0,
    });
    this.phFill++;
    this.runs++;
    this.runPfn = -1;
    if (this.phFill === PHDR_FLUSH) await this.flushPhdrs();
  }

  /** Write the buffered program headers, once the data they describe has reached the sink. */
  private async flushPhdrs(): Promise<void> {
    if (this.phFill === 0) return;
    await this.requireData().drain();
    await this.sink.write(this.phBuf.subarray(0, this.phFill * PHDR_SIZE), EHDR_SIZE + this.phFirst * PHDR_SIZE);
    const dv = new DataView(this.phBuf.buffer);
    for (let k = 0; k < this.phFill; k++) this.flushedPages += phdrU64(dv, k * PHDR_SIZE + 32) / this.requirePlan().pageSize;
    this.phFirst += this.phFill;
    this.phFill = 0;
  }

  async end(): Promise<WriteSummary> {
    const plan = this.requirePlan();
    await this.closeRun();
    await this.flushPhdrs();
    const data = this.requireData();
    await data.drain();
    const end = data.position;
    if (this.runs !== plan.keptRuns) {
      throw new Error(`ElfDumpWriter: wrote ${this.runs} PT_LOAD runs, planned ${plan.keptRuns}`);
    }
    await this.sink.setLength(end);
    await this.sink.commit();
    return { bytes: end, pagesWritten: this.pages, dataBytes: end - this.dataStart, segments: this.runs };
  }

  async salvage(): Promise<SalvageSummary | undefined> {
    const plan = this.plan;
    const data = this.data;
    if (this.sink.failure === undefined || !this.sink.rewritable || !plan || !data) {
      await this.abort();
      return undefined;
    }
    try {
      await data.settle();
      const durable = data.durable;
      const ps = plan.pageSize;
      // The open run joins the buffered ones; each keeps the pages that reached the file.
      if (this.runPfn >= 0 && this.runEnd > this.runPfn) {
        const written = Math.max(0, Math.min(this.runEnd - this.runPfn, Math.floor((durable - this.runOffset) / ps)));
        this.runEnd = this.runPfn + written;
        if (written > 0) {
          encodePhdr(this.phBuf, this.phFill * PHDR_SIZE, {
            type: PT_LOAD,
            flags: PF_R | PF_W | PF_X,
            offset: this.runOffset,
            vaddr: plan.pageOffset + BigInt(this.runPfn * ps),
            paddr: this.runPfn * ps,
            filesz: written * ps,
            memsz: written * ps,
            align: 0,
          });
          this.phFill++;
        }
      }
      const dv = new DataView(this.phBuf.buffer);
      let keep = 0;
      let pagesWritten = this.flushedPages;
      for (; keep < this.phFill; keep++) {
        const o = keep * PHDR_SIZE;
        const offset = phdrU64(dv, o + 8);
        const size = phdrU64(dv, o + 32);
        if (offset + size <= durable) {
          pagesWritten += size / ps;
          continue;
        }
        const part = Math.max(0, Math.floor((durable - offset) / ps)) * ps;
        pagesWritten += part / ps;
        if (part > 0) {
          for (const f of [32, 40]) {
            dv.setUint32(o + f, part % TWO32, true);
            dv.setUint32(o + f + 4, Math.floor(part / TWO32), true);
          }
          keep++;
        }
        break;
      }
      await this.sink.write(this.phBuf.subarray(0, keep * PHDR_SIZE), EHDR_SIZE + this.phFirst * PHDR_SIZE);
      const xnum = this.phnum >= PN_XNUM;
      await this.sink.write(encodeEhdr({ phnum: this.phnum, shoff: this.shoff, shnum: xnum ? 1 : 0, flags: DUMP_ELF_INCOMPLETE }), 0);
      const bytes = Math.max(durable, this.dataStart);
      await this.sink.setLength(bytes);
      await this.sink.commit();
      return { bytes, pagesWritten, pagesPlanned: plan.keptPages, flag: 'ELF e_flags DUMP_ELF_INCOMPLETE' };
    } catch {
      await this.sink.abort();
      return undefined;
    }
  }

  abort(): Promise<void> {
    return this.sink.abort();
  }

  private requireData(): SequentialWriter {
    if (!this.data) throw new Error('ElfDumpWriter: begin() was not called');
    return this.data;
  }

  private requirePlan(): OutputPlan {
    if (!this.plan) throw new Error('ElfDumpWriter: begin() was not called');
    return this.plan;
  }
}
