/**
 * Streams a guest as an x86_64 ELF /proc/vmcore-style image: ELF64 core,
 * one PT_NOTE (NT_PRSTATUS per CPU and the VMCOREINFO note), where the
 * guest has one a kexec-style kernel-text PT_LOAD (p_vaddr in
 * __START_KERNEL_map, its own copy of the image's pages, first as
 * kexec-tools writes it), then one PT_LOAD per RAM resource with p_vaddr =
 * PAGE_OFFSET + p_paddr; page-aligned file offsets. Pages are generated into a few reused 2 MiB buffers; pages
 * that are all zero are never written (sparse holes, with the final length
 * set at the end).
 */
import { EHDR_SIZE, PF_R, PF_W, PF_X, PHDR_SIZE, PT_LOAD, PT_NOTE, encodeEhdr, encodePhdr, encodeVmcoreinfoNote } from '../formats/elf/elf.js';
import type { PositionalSink } from '../io/sink.js';
import type { Guest } from './guest.js';
import { KERNEL_TEXT_BASE, PAGE_OFFSET } from './layout.js';
import { PAGE_SIZE } from './plan.js';

/** Pages generated per buffer (2 MiB, one section's struct pages). */
const CHUNK_PAGES = 512;
const BUFFERS = 3;

export interface ImageStats {
  /** Length of the image file. */
  fileSize: number;
  /** Bytes actually written (non-zero pages and headers). */
  written: number;
  /** Pages in PT_LOADs. */
  loadPages: number;
  /** Pages left as holes because they are all zero. */
  zeroPages: number;
}

export function imageNotes(g: Guest): Uint8Array {
  // NT_PRSTATUS per CPU (the panicking one with its registers), then VMCOREINFO.
  const parts: Uint8Array[] = [...g.printk.cpuNotes];
  parts.push(encodeVmcoreinfoNote(g.vmcoreinfo));
  return Buffer.concat(parts);
}

/** A PT_LOAD of the image: pfns [start, end) at virtual address `vaddr`. */
export interface ImageSegment {
  start: number;
  end: number;
  vaddr: bigint;
}

/** The PT_LOADs in program-header order: the kernel-text one (if any), then physical memory. */
export function imageSegments(g: Guest): ImageSegment[] {
  const out: ImageSegment[] = [];
  if (g.textLoad) out.push({ ...g.textLoad, vaddr: KERNEL_TEXT_BASE + BigInt(g.textLoad.start * PAGE_SIZE - g.physBase) });
  for (const l of g.loads) out.push({ ...l, vaddr: PAGE_OFFSET + BigInt(l.start * PAGE_SIZE) });
  return out;
}

/** File offset of each PT_LOAD's data (in imageSegments() order), and the header bytes. */
export function imageLayout(g: Guest): { header: Uint8Array; segments: ImageSegment[]; offsets: number[]; fileSize: number } {
  const notes = imageNotes(g);
  const segments = imageSegments(g);
  const phnum = 1 + segments.length;
  const notesAt = EHDR_SIZE + phnum * PHDR_SIZE;
  let off = Math.ceil((notesAt + notes.length) / PAGE_SIZE) * PAGE_SIZE;
  const offsets: number[] = [];
  for (const l of segments) {
    offsets.push(off);
    off += (l.end - l.start) * PAGE_SIZE;
  }
  const header = new Uint8Array(notesAt + notes.length);
  header.set(encodeEhdr({ phnum }), 0);
  encodePhdr(header, EHDR_SIZE, {
    type: PT_NOTE,
    flags: 0,
    offset: notesAt,
    vaddr: 0n,
    paddr: 0,
    filesz: notes.length,
    memsz: notes.length,
    align: 0,
  });
  segments.forEach((l, i) => {
    const paddr = l.start * PAGE_SIZE;
    const size = (l.end - l.start) * PAGE_SIZE;
    encodePhdr(header, EHDR_SIZE + (i + 1) * PHDR_SIZE, {
      type: PT_LOAD,
      flags: PF_R | PF_W | PF_X,
      offset: offsets[i]!,
      vaddr: l.vaddr,
      paddr,
      filesz: size,
      memsz: size,
      align: 0,
    });
  });
  header.set(notes, notesAt);
  return { header, segments, offsets, fileSize: off };
}

export async function writeImage(g: Guest, sink: PositionalSink, onProgress?: (done: number, total: number) => void): Promise<ImageStats> {
  const { header, segments, offsets, fileSize } = imageLayout(g);
  await sink.write(header, 0);
  let written = header.length;
  let zeroPages = 0;
  const totalPages = segments.reduce((a, l) => a + l.end - l.start, 0);
  const totalBytes = totalPages * PAGE_SIZE;
  let donePages = 0;

  const buffers = Array.from({ length: BUFFERS }, () => new Uint8Array(CHUNK_PAGES * PAGE_SIZE));
  const inflight: Array<Promise<void> | undefined> = new Array(BUFFERS).fill(undefined);
  const nonzero = new Uint8Array(CHUNK_PAGES);
  let slot = 0;

  for (let li = 0; li < segments.length; li++) {
    const l = segments[li]!;
    const base = offsets[li]!;
    // Chunks aligned to 512 pfns so that struct-page chunks fill one buffer.
    let p = l.start;
    while (p < l.end) {
      const chunkEnd = Math.min(l.end, (Math.floor(p / CHUNK_PAGES) + 1) * CHUNK_PAGES);
      const n = chunkEnd - p;
      await inflight[slot];
      const buf = buffers[slot]!;
      renderChunk(g, li, p, chunkEnd, buf, nonzero);
      // Write each span of non-zero pages.
      const writes: Array<Promise<void>> = [];
      let k = 0;
      while (k < n) {
        if (!nonzero[k]) {
          zeroPages++;
          k++;
          continue;
        }
        let m = k;
        while (m < n && nonzero[m]) m++;
        const bytes = buf.subarray(k * PAGE_SIZE, m * PAGE_SIZE);
        writes.push(sink.write(bytes, base + (p - l.start + k) * PAGE_SIZE));
        written += bytes.length;
        k = m;
      }
      if (writes.length) {
        const done = Promise.all(writes).then(() => undefined);
        done.catch(() => undefined); // awaited below; keep an early failure from counting as unhandled
        inflight[slot] = done;
      } else inflight[slot] = undefined;
      slot = (slot + 1) % BUFFERS;
      donePages += n;
      onProgress?.(donePages * PAGE_SIZE, totalBytes);
      p = chunkEnd;
    }
  }
  await Promise.all(inflight);
  await sink.setLength(fileSize);
  return { fileSize, written, loadPages: totalPages, zeroPages };
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/** Render pfns [p, end) of PT_LOAD li into buf, and mark in `nonzero` the pages that hold data (the rest stay holes). */
function renderChunk(g: Guest, li: number, p: number, end: number, buf: Uint8Array, nonzero: Uint8Array): void {
  nonzero.fill(0, 0, end - p);
  g.plan.forEachRunIn(p, end, (r, s, e) => {
    const o = (s - p) * PAGE_SIZE;
    if (r.content === 'data') {
      g.content.fillRun(s, e - s, r.cls, buf, o);
      nonzero.fill(1, s - p, e - p);
    } else if (r.content === 'meta') {
      g.layout.fillMeta(s, e - s, buf, o, g.encoder.structPages);
      for (let q = s; q < e; q++) {
        const at = (q - p) * PAGE_SIZE;
        if (ZERO_PAGE.compare(buf, at, at + PAGE_SIZE) === 0) {
          throw new Error(`metadata page 0x${q.toString(16)} (${r.owner ?? ''}) came out all zero but the plan says it holds data`);
        }
      }
      nonzero.fill(1, s - p, e - p);
    } else if (r.content === 'none') {
      throw new Error(`pfn 0x${s.toString(16)} is in PT_LOAD ${li} but the plan says it is not in the image`);
    }
  });
}
