/**
 * ELF64 little-endian core-file structures (x86_64), encoders and decoders.
 * Field names follow <elf.h>. Used by the vmcore reader, the ELF dump writer
 * and the synthetic-image generator.
 */
import { setU64 } from '../../core/checked.js';

export const ELFMAG = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46);
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ET_CORE = 4;
export const EM_X86_64 = 62;

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** e_phnum value meaning "the real count is in section header 0's sh_info". */
export const PN_XNUM = 0xffff;

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;
export const NHDR_SIZE = 12;

export const NT_PRSTATUS = 1;
export const NT_VMCOREINFO = 0;
/** sizeof(struct elf_prstatus) on x86_64. */
export const PRSTATUS_SIZE = 336;

/** x86_64 direct-map base (__PAGE_OFFSET without KASLR). */
export const X86_64_PAGE_OFFSET = 0xffff888000000000n;

export interface Elf64Ehdr {
  type: number;
  machine: number;
  version: number;
  entry: bigint;
  phoff: number;
  shoff: number;
  flags: number;
  ehsize: number;
  phentsize: number;
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface Elf64Phdr {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

/** Encode an ELF64 header for an x86_64 core file. */
export function encodeEhdr(h: { phnum: number; phoff?: number; shoff?: number; shnum?: number; flags?: number }): Uint8Array {
  const b = new Uint8Array(EHDR_SIZE);
  const dv = new DataView(b.buffer);
  b.set(ELFMAG, 0);
  b[4] = ELFCLASS64;
  b[5] = ELFDATA2LSB;
  b[6] = EV_CURRENT;
  dv.setUint16(16, ET_CORE, true);
  dv.setUint16(18, EM_X86_64, true);
  dv.setUint32(20, EV_CURRENT, true);
  setU64(dv, 32, h.phoff ?? EHDR_SIZE);
  setU64(dv, 40, h.shoff ?? 0);
  dv.setUint32(48, h.flags ?? 0, true);
  dv.setUint16(52, EHDR_SIZE, true);
  dv.setUint16(54, PHDR_SIZE, true);
  dv.setUint16(56, h.phnum >= PN_XNUM ? PN_XNUM : h.phnum, true);
  dv.setUint16(58, h.shnum ? SHDR_SIZE : 0, true);
  dv.setUint16(60, h.shnum ?? 0, true);
  dv.setUint16(62, 0, true);
  return b;
}

/** Encode one program header into `dst` at `off`. */
export function encodePhdr(dst: Uint8Array, off: number, p: Elf64Phdr): void {
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  dv.setUint32(off, p.type, true);
  dv.setUint32(off + 4, p.flags, true);
  setU64(dv, off + 8, p.offset);
  dv.setBigUint64(off + 16, BigInt.asUintN(64, p.vaddr), true);
  setU64(dv, off + 24, p.paddr);
  setU64(dv, off + 32, p.filesz);
  setU64(dv, off + 40, p.memsz);
  setU64(dv, off + 48, p.align);
}

/**
 * Section header 0 for PN_XNUM: sh_info carries the real program header
 * count (ELF gABI "Extended program header numbering").
 */
export function encodeXnumShdr(phnum: number): Uint8Array {
  const b = new Uint8Array(SHDR_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(44, phnum, true); // sh_info
  return b;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One ELF note: header, NUL-terminated name and descriptor, each padded to 4 bytes. */
export function encodeNote(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = Buffer.from(`${name}\0`, 'latin1');
  const size = NHDR_SIZE + align4(nameBytes.length) + align4(desc.length);
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, nameBytes.length, true);
  dv.setUint32(4, desc.length, true);
  dv.setUint32(8, type, true);
  b.set(nameBytes, NHDR_SIZE);
  b.set(desc, NHDR_SIZE + align4(nameBytes.length));
  return b;
}

/** An NT_PRSTATUS note for one CPU: zero except pr_pid (offset 32). */
export function encodePrstatusNote(pid: number): Uint8Array {
  const desc = new Uint8Array(PRSTATUS_SIZE);
  new DataView(desc.buffer).setUint32(32, pid, true);
  return encodeNote('CORE', NT_PRSTATUS, desc);
}

export function encodeVmcoreinfoNote(text: string): Uint8Array {
  return encodeNote('VMCOREINFO', NT_VMCOREINFO, Buffer.from(text, 'latin1'));
}

export interface ElfNote {
  name: string;
  type: number;
  /** Offset of the descriptor within the note buffer. */
  descOffset: number;
  descSize: number;
}

/**
 * Walk the notes in `buf` (a PT_NOTE segment's bytes). Stops at the first
 * all-zero header (the kernel pads PT_NOTE) and fails on a note that runs
 * past the buffer. `fail` builds the error for a bad note at a buffer offset.
 */
export function parseNotes(buf: Uint8Array, fail: (offset: number, what: string) => Error): ElfNote[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const notes: ElfNote[] = [];
  let off = 0;
  while (off + NHDR_SIZE <= buf.length) {
    const namesz = dv.getUint32(off, true);
    const descsz = dv.getUint32(off + 4, true);
    const type = dv.getUint32(off + 8, true);
    if (namesz === 0 && descsz === 0 && type === 0) break;
    const nameStart = off + NHDR_SIZE;
    const descStart = nameStart + align4(namesz);
    const end = descStart + align4(descsz);
    if (namesz > 256 || descStart > buf.length || descStart + descsz > buf.length) {
      throw fail(off, `note ${notes.length} (namesz ${namesz}, descsz ${descsz}) runs past the end of its segment`);
    }
    let nameEnd = nameStart + namesz;
    while (nameEnd > nameStart && buf[nameEnd - 1] === 0) nameEnd--;
    const name = Buffer.from(buf.buffer, buf.byteOffset + nameStart, nameEnd - nameStart).toString('latin1');
    notes.push({ name, type, descOffset: descStart, descSize: descsz });
    off = Math.min(end, buf.length);
  }
  return notes;
}
