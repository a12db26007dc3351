/**
 * ELF dump writer (-E). One PT_LOAD per run of kept pages: exclusion is
 * exact, so an excluded page is never read nor written (makedumpfile -E
 * keeps excluded runs shorter than 256 pages). PN_XNUM is used when the
 * program header count reaches 0xffff.
 *
 * Layout: Ehdr | Phdr[phnum] | [Shdr 0 when PN_XNUM] | notes | (room) |
 * page data. Page data starts on a page boundary after room for the most
 * program headers the output can need (elfLoadBudget), so each page is
 * read once and written where it goes: zero pages (dump level bit 1) are
 * found as they are written, and one inside a run splits it. The ELF
 * header, the PT_NOTE header and the notes are written last, for the
 * program headers actually used; in a file the rest of the room stays
 * zeros (written by begin(), so that salvage() never needs new blocks).
 *
 * After a write error of a file (the disk full), salvage() keeps what was
 * written, as makedumpfile does: the ELF header's e_flags gets
 * DUMP_ELF_INCOMPLETE and the program headers describe exactly the pages
 * that reached the file (the last run cut to them).
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
 * PT_NOTE and the PT_LOADs) and `notesSize` bytes of notes: the notes after
 * the headers (and the PN_XNUM section header), page data from the next
 * page boundary. With `room` program headers reserved (at least `phnum`),
 * page data starts after the room instead.
 */
export function elfLayout(phnum: number, notesSize: number, pageSize: number, room = phnum): { notesAt: number; dataStart: number } {
  const at = (n: number): number => EHDR_SIZE + n * PHDR_SIZE + (n >= PN_XNUM ? SHDR_SIZE : 0);
  return { notesAt: at(phnum), dataStart: Math.ceil((at(Math.max(room, phnum)) + notesSize) / pageSize) * pageSize };
}

/**
 * The most PT_LOADs an output can need: one per run of the plan, and with
 * zero pages left out (dump level bit 1) one more for each run of zero
 * pages inside a run, of which a run of L pages has at most (L - 1) / 2.
 * The extra ones are capped at max(4096, keptRuns) program headers (at
 * most 56 bytes of room each); past the cap, zero pages inside a run are
 * written as data (a correct dump, a few pages larger).
 */
export function elfLoadBudget(plan: Pick<OutputPlan, 'keptPages' | 'keptRuns' | 'dumpLevel'>): number {
  if ((plan.dumpLevel & 1) === 0) return plan.keptRuns;
  const splits = Math.min(Math.floor((plan.keptPages - plan.keptRuns) / 2), Math.max(4096, plan.keptRuns));
  return plan.keptRuns + Math.max(0, splits);
}

/** A u64 field of an encoded program header (values below 2^53). */
function phdrU64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;
}

export class ElfDumpWriter implements DumpWriter {
  private plan: OutputPlan | undefined;
  /** PT_LOADs the room before the page data holds. */
  private maxLoads = 0;
  /** Runs that zero pages may still split (the rest of the budget). */
  private splitsLeft = 0;
  private dataStart = 0;
  /** Page data (write-behind). */
  private data: SequentialWriter | undefined;
  // Current run.
  private runPfn = -1;
  private runEnd = -1;
  private runOffset = 0;
  /** End of the zero pages left out right after the current run (-1: none): a page here splits the run. */
  private zeroEnd = -1;
  private runs = 0;
  // Buffered program headers.
  private readonly phBuf = new Uint8Array(PHDR_FLUSH * PHDR_SIZE);
  private phFill = 0;
  private phFirst = 0;
  /** Pages passed to writePages. */
  private pagesIn = 0;
  /** Pages whose data is in the output. */
  private pages = 0;
  /** Zero pages written as data (the budget of splits spent). */
  private zerosStored = 0;
  /** Pages described by program headers already written. */
  private flushedPages = 0;
  private readonly sink: WatchedSink;

  constructor(sink: PositionalSink) {
    this.sink = new WatchedSink(sink);
  }

  async begin(plan: OutputPlan): Promise<void> {
    this.plan = plan;
    this.maxLoads = elfLoadBudget(plan);
    this.splitsLeft = this.maxLoads - plan.keptRuns;
    const room = 1 + this.maxLoads;
    const { dataStart } = elfLayout(room, plan.notes.length, plan.pageSize);
    this.dataStart = dataStart;
    this.data = new SequentialWriter(this.sink, this.dataStart, this.sink.rewritable ? DATA_FLUSH_FILE : DATA_FLUSH_STREAM);
    // In a file, reserve the headers and notes now: after the disk fills
    // up, salvage() must still be able to write them in place.
    if (this.sink.rewritable) await writeZeros(this.sink, 0, elfLayout(room, 0, 1).notesAt + plan.notes.length);
    this.phFirst = 1;
  }

  /** The ELF header, the PT_NOTE header and the notes, for `phnum` program headers. */
  private async writeHead(phnum: number, flags: number): Promise<void> {
    const plan = this.requirePlan();
    const xnum = phnum >= PN_XNUM;
    const shoff = xnum ? EHDR_SIZE + phnum * PHDR_SIZE : 0;
    const { notesAt } = elfLayout(phnum, plan.notes.length, plan.pageSize);
    const note = new Uint8Array(PHDR_SIZE);
    encodePhdr(note, 0, { type: PT_NOTE, flags: 0, offset: notesAt, vaddr: 0n, paddr: 0, filesz: plan.notes.length, memsz: plan.notes.length, align: 0 });
    await this.sink.write(note, EHDR_SIZE);
    if (xnum) await this.sink.write(encodeXnumShdr(phnum), shoff);
    if (plan.notes.length) await this.sink.write(plan.notes, notesAt);
    await this.sink.write(encodeEhdr({ phnum, shoff, shnum: xnum ? 1 : 0, flags }), 0);
  }

  async bitmaps(_window: BitmapWindow): Promise<void> {
    // ELF has no bitmaps: holes and exclusions are gaps between PT_LOADs.
  }

  async writePages(pfn: number, count: number, data: Uint8Array, zero?: Uint8Array): Promise<void> {
    const ps = this.requirePlan().pageSize;
    const out = this.requireData();
    if (pfn < this.runEnd || pfn < this.zeroEnd) throw new Error(`ElfDumpWriter: pages at pfn ${pfn} arrive after pfn ${Math.max(this.runEnd, this.zeroEnd) - 1}`);
    this.pagesIn += count;
    if (this.pagesIn > this.requirePlan().keptPages) throw new Error(`ElfDumpWriter: internal error: ${this.pagesIn} pages written, the plan has ${this.requirePlan().keptPages}`);
    let i = 0;
    while (i < count) {
      const isZero = zero !== undefined && zero[i] === 1;
      let j = i + 1;
      while (j < count && (zero !== undefined && zero[j] === 1) === isZero) j++;
      const p = pfn + i;
      const n = j - i;
      if (isZero) {
        if (p === this.zeroEnd) {
          this.zeroEnd += n;
        } else if (this.runPfn >= 0 && p === this.runEnd) {
          if (this.splitsLeft > 0) {
            // Left out: a split if the run goes on after them, nothing if it ends.
            this.zeroEnd = p + n;
          } else {
            for (let k = 0; k < n; k++) await out.appendZeros(ps);
            this.runEnd += n;
            this.pages += n;
            this.zerosStored += n;
            zero.fill(0, i, j);
          }
        }
        // Zero pages that begin a run are left out at no cost.
      } else {
        if (p !== this.runEnd) {
          const split = p === this.zeroEnd;
          await this.closeRun();
          if (split) this.splitsLeft--;
          this.runPfn = p;
          this.runEnd = p;
          this.runOffset = out.position;
        }
        this.zeroEnd = -1;
        await out.append(data.subarray(i * ps, j * ps));
        this.runEnd += n;
        this.pages += n;
      }
      i = j;
    }
  }

  private async closeRun(): Promise<void> {
    if (this.runPfn < 0 || this.runEnd === this.runPfn) return;
    const plan = this.requirePlan();
    if (this.runs + 1 > this.maxLoads) {
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
    if (this.pagesIn !== plan.keptPages) {
      throw new Error(`ElfDumpWriter: internal error: ${this.pagesIn} pages written, the plan has ${plan.keptPages}`);
    }
    await this.writeHead(1 + this.runs, 0);
    await this.sink.setLength(end);
    await this.sink.commit();
    return { bytes: end, pagesWritten: this.pages, dataBytes: end - this.dataStart, segments: this.runs, zeroPagesStored: this.zerosStored };
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
      await this.writeHead(this.phFirst + keep, DUMP_ELF_INCOMPLETE);
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
