/**
 * kexec segment lists: the destination ranges of a loaded kexec image, as
 * `struct kexec_segment` gives them to kexec_load(2): `mem` (physical
 * address) and `memsz` (bytes), page-aligned, at most KEXEC_SEGMENT_MAX
 * (16) of them, never overlapping (kernel/kexec_core.c
 * sanity_check_segment_list()). docs/formats/kexec-segments.md.
 *
 *   dumpsieve-kexec-segments 1
 *   # MEM MEMSZ [LABEL]
 *   0x1400000 0x800000 kernel
 */
import { DumpError, InputError } from '../core/errors.js';
import { readLines, textLines, type TextLine } from '../io/lines.js';

export const KEXEC_SEGMENTS_MAGIC = 'dumpsieve-kexec-segments';
export const KEXEC_SEGMENT_MAX = 16;
const PAGE = 4096;
/** 2^52: x86_64's largest physical address (MAX_PHYSMEM_BITS with 5-level paging). */
const MAX_ADDR = 2 ** 52;

export interface KexecSegment {
  /** Physical destination address (bytes, page-aligned). */
  mem: number;
  /** Size of the destination (bytes, page multiple, > 0). */
  memsz: number;
  label?: string | undefined;
}

const hx = (n: number): string => `0x${n.toString(16)}`;

function num(s: string, what: string, file: string, line: number): number {
  let v: number;
  if (/^0[xX][0-9a-fA-F]{1,13}$/.test(s)) v = Number.parseInt(s.slice(2), 16);
  else if (/^\d{1,16}$/.test(s)) v = Number(s);
  else throw new InputError(`${what} '${s}' is not a number`, { file, line });
  if (!Number.isSafeInteger(v) || v > MAX_ADDR) throw new InputError(`${what} ${s} is beyond ${hx(MAX_ADDR)}`, { file, line });
  return v;
}

/** Largest segment list read (bytes). */
export const MAX_KEXEC_SEGMENTS_BYTES = 1 << 20;

/** Parses a segment list line by line; the first bad line throws. */
class SegmentListParser {
  readonly out: KexecSegment[] = [];
  private prevEnd = 0;
  private started = false;
  constructor(private readonly file: string) {}

  line(l: TextLine): void {
    const file = this.file;
    if (!this.started) {
      this.started = true;
      const m = /^(\S+)\s+(\d+)$/.exec(l.text.trim());
      if (!m || m[1] !== KEXEC_SEGMENTS_MAGIC) {
        throw new InputError(`not a kexec segment list (first line must be '${KEXEC_SEGMENTS_MAGIC} 1')`, { file, line: 1 });
      }
      if (m[2] !== '1') throw new InputError(`kexec segment list version ${m[2]} is not supported (this build reads version 1)`, { file, line: 1 });
      return;
    }
    const t = l.text.trim();
    if (t === '' || t.startsWith('#')) return;
    const line = l.no;
    const out = this.out;
    const prevEnd = this.prevEnd;
    const f = t.split(/\s+/);
    if (f.length < 2 || f.length > 3) throw new InputError(`expected 'MEM MEMSZ [LABEL]', got ${f.length} fields`, { file, line });
    const mem = num(f[0]!, 'mem', file, line);
    const memsz = num(f[1]!, 'memsz', file, line);
    if (mem % PAGE !== 0 || memsz % PAGE !== 0) throw new InputError(`segment ${hx(mem)}+${hx(memsz)} is not page-aligned`, { file, line });
    if (memsz === 0) throw new InputError(`segment at ${hx(mem)} is empty`, { file, line });
    if (mem + memsz > MAX_ADDR) throw new InputError(`segment ${hx(mem)}+${hx(memsz)} ends beyond ${hx(MAX_ADDR)}`, { file, line });
    if (mem < prevEnd) {
      throw new InputError(`segment at ${hx(mem)} overlaps or precedes the previous one (ending at ${hx(prevEnd)}); segments must be sorted and disjoint`, { file, line });
    }
    if (out.length === KEXEC_SEGMENT_MAX) throw new InputError(`more than ${KEXEC_SEGMENT_MAX} segments (KEXEC_SEGMENT_MAX)`, { file, line });
    const label = f[2];
    if (label !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(label)) throw new InputError(`label '${label}' has characters other than letters, digits and _.:-`, { file, line });
    out.push({ mem, memsz, label });
    this.prevEnd = mem + memsz;
  }

  end(): KexecSegment[] {
    if (!this.started) throw new InputError(`not a kexec segment list (first line must be '${KEXEC_SEGMENTS_MAGIC} 1')`, { file: this.file, line: 1 });
    return this.out;
  }
}

/** Parse a segment list; segments must be sorted by address, page-aligned and disjoint. */
export function parseKexecSegments(text: string, file: string): KexecSegment[] {
  const p = new SegmentListParser(file);
  for (const l of textLines(text)) p.line(l);
  return p.end();
}

export function formatKexecSegments(segs: readonly KexecSegment[], comment?: string): string {
  const out = [`${KEXEC_SEGMENTS_MAGIC} 1`];
  if (comment) out.push(...comment.split('\n').map((c) => `# ${c}`));
  out.push('# MEM MEMSZ [LABEL]: destination [MEM, MEM+MEMSZ) in bytes, as struct kexec_segment');
  for (const s of segs) out.push(`${hx(s.mem)} ${hx(s.memsz)}${s.label ? ` ${s.label}` : ''}`);
  return `${out.join('\n')}\n`;
}

/** Read a segment list: a regular file of at most 1 MiB, read as a stream and stopped at its first error (InputError, exit 2). */
export async function readKexecSegments(path: string): Promise<KexecSegment[]> {
  const p = new SegmentListParser(path);
  try {
    for await (const l of readLines(path, { what: 'kexec segment list', maxBytes: MAX_KEXEC_SEGMENTS_BYTES })) p.line(l);
  } catch (err) {
    // A list that cannot be read is a bad argument (exit 2), like a malformed one.
    if (err instanceof DumpError && err.code === 'IO') throw new InputError(err.detail, { file: err.file, cause: err });
    throw err;
  }
  return p.end();
}
