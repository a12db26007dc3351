/**
 * ELF dump writer (-E). One PT_LOAD per run of kept pages: exclusion is
 * exact, so an excluded page is never read nor written (makedumpfile -E
 * keeps excluded runs shorter than 256 pages). PN_XNUM is used when the
 * program header count reaches 0xffff.
 *
 * Layout: Ehdr | Phdr[phnum] | [Shdr 0 when PN_XNUM] | notes | page data
 * (page data starts page-aligned so the file stays sparse-friendly).
 */
import { SequentialWriter, type PositionalSink } from '../../io/sink.js';
import type { BitmapWindow, DumpWriter, OutputPlan, WriteSummary } from '../types.js';
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

const DATA_FLUSH = 4 << 20;
const PHDR_FLUSH = 4096;

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

  constructor(private readonly sink: PositionalSink) {}

  async begin(plan: OutputPlan): Promise<void> {
    this.plan = plan;
    this.phnum = 1 + plan.keptRuns;
    const xnum = this.phnum >= PN_XNUM;
    const notesAt = EHDR_SIZE + this.phnum * PHDR_SIZE + (xnum ? SHDR_SIZE : 0);
    const ps = plan.pageSize;
    this.dataStart = Math.ceil((notesAt + plan.notes.length) / ps) * ps;
    this.data = new SequentialWriter(this.sink, this.dataStart, DATA_FLUSH);
    const shoff = xnum ? EHDR_SIZE + this.phnum * PHDR_SIZE : 0;
    await this.sink.write(encodeEhdr({ phnum: this.phnum, shoff, shnum: xnum ? 1 : 0 }), 0);
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

  private async flushPhdrs(): Promise<void> {
    if (this.phFill === 0) return;
    await this.sink.write(this.phBuf.subarray(0, this.phFill * PHDR_SIZE), EHDR_SIZE + this.phFirst * PHDR_SIZE);
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
