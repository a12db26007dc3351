/**
 * A dumb ELF64 core builder for fixtures, independent of the production
 * writer: hand-placed headers, any segment layout (unaligned, overlapping,
 * p_filesz < p_memsz, data past EOF), any notes.
 */
export interface SegSpec {
  type?: number; // default PT_LOAD (1)
  paddr: number;
  vaddr?: bigint;
  /** File bytes of the segment (length = p_filesz unless filesz given). */
  data?: Uint8Array;
  filesz?: number;
  memsz?: number;
  /** Override p_offset (to point past EOF, say). */
  offset?: number;
}

export interface NoteSpec {
  name: string;
  type: number;
  desc: Uint8Array;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function noteBytes(notes: NoteSpec[]): Uint8Array {
  const parts: number[] = [];
  for (const n of notes) {
    const name = Buffer.from(`${n.name}\0`, 'latin1');
    const hdr = Buffer.alloc(12);
    hdr.writeUInt32LE(name.length, 0);
    hdr.writeUInt32LE(n.desc.length, 4);
    hdr.writeUInt32LE(n.type, 8);
    parts.push(...hdr, ...name, ...new Array(align4(name.length) - name.length).fill(0));
    parts.push(...n.desc, ...new Array(align4(n.desc.length) - n.desc.length).fill(0));
  }
  return Uint8Array.from(parts);
}

export function vmcoreinfoNote(lines: string[]): NoteSpec {
  return { name: 'VMCOREINFO', type: 0, desc: Buffer.from(lines.map((l) => `${l}\n`).join(''), 'latin1') };
}

export function buildElfCore(opts: { segments: SegSpec[]; notes?: NoteSpec[]; xnum?: boolean; truncateTo?: number; machine?: number; type?: number }): Uint8Array {
  const notes = noteBytes(opts.notes ?? []);
  const phnum = opts.segments.length + 1;
  const xnum = opts.xnum ?? phnum >= 0xffff;
  const phoff = 64;
  const shoff = xnum ? phoff + phnum * 56 : 0;
  let pos = phoff + phnum * 56 + (xnum ? 64 : 0);
  const noteOff = pos;
  pos += notes.length;
  const offsets: number[] = [];
  for (const s of opts.segments) {
    offsets.push(s.offset ?? pos);
    if (s.offset === undefined) pos += s.data?.length ?? 0;
  }
  const total = Math.max(pos, ...opts.segments.map((s, i) => (s.offset !== undefined ? 0 : offsets[i]! + (s.data?.length ?? 0))));
  const b = Buffer.alloc(total);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  b.writeUInt16LE(opts.type ?? 4, 16);
  b.writeUInt16LE(opts.machine ?? 62, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(phoff), 32);
  b.writeBigUInt64LE(BigInt(shoff), 40);
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(xnum ? 0xffff : phnum, 56);
  b.writeUInt16LE(xnum ? 64 : 0, 58);
  b.writeUInt16LE(xnum ? 1 : 0, 60);
  if (xnum) b.writeUInt32LE(phnum, shoff + 44);
  const ph = (i: number, type: number, off: number, vaddr: bigint, paddr: number, filesz: number, memsz: number): void => {
    const o = phoff + i * 56;
    b.writeUInt32LE(type, o);
    b.writeUInt32LE(7, o + 4);
    b.writeBigUInt64LE(BigInt(off), o + 8);
    b.writeBigUInt64LE(vaddr, o + 16);
    b.writeBigUInt64LE(BigInt(paddr), o + 24);
    b.writeBigUInt64LE(BigInt(filesz), o + 32);
    b.writeBigUInt64LE(BigInt(memsz), o + 40);
  };
  ph(0, 4, noteOff, 0n, 0, notes.length, notes.length);
  b.set(notes, noteOff);
  opts.segments.forEach((s, i) => {
    const len = s.filesz ?? s.data?.length ?? 0;
    ph(i + 1, s.type ?? 1, offsets[i]!, s.vaddr ?? 0xffff888000000000n + BigInt(s.paddr), s.paddr, len, s.memsz ?? len);
    if (s.data && s.offset === undefined) b.set(s.data, offsets[i]!);
  });
  return opts.truncateTo !== undefined ? b.subarray(0, opts.truncateTo) : b;
}

/** A page whose bytes identify (tag, pfn): 8-byte pfn then a repeating tag. */
export function taggedPage(pfn: number, tag = 0xa5, size = 4096): Uint8Array {
  const p = new Uint8Array(size).fill(tag);
  new DataView(p.buffer).setBigUint64(0, BigInt(pfn), true);
  return p;
}
