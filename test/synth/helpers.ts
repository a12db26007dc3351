/**
 * Test helpers for synthetic images, written independently of the
 * generator: an ELF program-header reader, a physical-memory reader over
 * the PT_LOADs, an x86_64 4-level page-table walker, the buddy-block cut
 * rule, and a model of makedumpfile 1.7.2's per-class decisions
 * (__exclude_unnecessary_pages) applied to a truth manifest.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TruthHeader, TruthRun } from '../../src/synth/truth.js';

export async function tempDir(tag: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `dumpsieve-${tag}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Phdr {
  type: number;
  offset: number;
  vaddr: bigint;
  paddr: number;
  filesz: number;
  memsz: number;
}

/** Read the ELF header and program headers (ELF64 LE) without the project's reader. */
export async function readPhdrs(path: string): Promise<{ type: number; machine: number; phoff: number; phdrs: Phdr[]; notes: Buffer; fileSize: number }> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    const eh = Buffer.alloc(64);
    await fh.read(eh, 0, 64, 0);
    if (eh.readUInt32BE(0) !== 0x7f454c46) throw new Error('not ELF');
    const phoff = Number(eh.readBigUInt64LE(32));
    const phnum = eh.readUInt16LE(56);
    const ph = Buffer.alloc(phnum * 56);
    await fh.read(ph, 0, ph.length, phoff);
    const phdrs: Phdr[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * 56;
      phdrs.push({
        type: ph.readUInt32LE(o),
        offset: Number(ph.readBigUInt64LE(o + 8)),
        vaddr: ph.readBigUInt64LE(o + 16),
        paddr: Number(ph.readBigUInt64LE(o + 24)),
        filesz: Number(ph.readBigUInt64LE(o + 32)),
        memsz: Number(ph.readBigUInt64LE(o + 40)),
      });
    }
    const note = phdrs.find((p) => p.type === 4)!;
    const notes = Buffer.alloc(note.filesz);
    await fh.read(notes, 0, note.filesz, note.offset);
    return { type: eh.readUInt16LE(16), machine: eh.readUInt16LE(18), phoff, phdrs, notes, fileSize: st.size };
  } finally {
    await fh.close();
  }
}

/** The VMCOREINFO note's text, found by walking the notes. */
export function vmcoreinfoText(notes: Buffer): string {
  let off = 0;
  while (off + 12 <= notes.length) {
    const namesz = notes.readUInt32LE(off);
    const descsz = notes.readUInt32LE(off + 4);
    const name = notes.toString('latin1', off + 12, off + 12 + namesz).replace(/\0+$/, '');
    const desc = off + 12 + Math.ceil(namesz / 4) * 4;
    if (name === 'VMCOREINFO') return notes.toString('latin1', desc, desc + descsz);
    off = desc + Math.ceil(descsz / 4) * 4;
  }
  throw new Error('no VMCOREINFO note');
}

export function parseVmcoreinfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

/** Physical reads through the PT_LOADs of an ELF image. */
export class PhysImage {
  private constructor(
    private readonly fh: Awaited<ReturnType<typeof open>>,
    readonly loads: Phdr[],
  ) {}

  static async open(path: string): Promise<PhysImage> {
    const { phdrs } = await readPhdrs(path);
    return new PhysImage(await open(path, 'r'), phdrs.filter((p) => p.type === 1));
  }

  has(paddr: number): boolean {
    return this.loads.some((l) => paddr >= l.paddr && paddr < l.paddr + l.filesz);
  }

  async read(paddr: number, len: number): Promise<Buffer> {
    const l = this.loads.find((x) => paddr >= x.paddr && paddr + len <= x.paddr + x.filesz);
    if (!l) throw new Error(`physical 0x${paddr.toString(16)}+${len} is not in the image`);
    const b = Buffer.alloc(len);
    await this.fh.read(b, 0, len, l.offset + (paddr - l.paddr));
    return b;
  }

  async u64(paddr: number): Promise<bigint> {
    return (await this.read(paddr, 8)).readBigUInt64LE(0);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** Translate a kernel virtual address with the 4-level tables at physical `pgd`. */
export async function translate(img: PhysImage, pgd: number, va: bigint): Promise<number> {
  const idx = (shift: bigint): number => Number((va >> shift) & 511n);
  const pgde = await img.u64(pgd + idx(39n) * 8);
  if (!(pgde & 1n)) throw new Error(`PGD entry for 0x${va.toString(16)} not present`);
  const pude = await img.u64(Number(pgde & ADDR_MASK) + idx(30n) * 8);
  if (!(pude & 1n)) throw new Error(`PUD entry for 0x${va.toString(16)} not present`);
  if (pude & 0x80n) return Number((pude & ADDR_MASK & ~0x3fff_ffffn) | (va & 0x3fff_ffffn));
  const pmde = await img.u64(Number(pude & ADDR_MASK) + idx(21n) * 8);
  if (!(pmde & 1n)) throw new Error(`PMD entry for 0x${va.toString(16)} not present`);
  if (pmde & 0x80n) return Number((pmde & ADDR_MASK & ~0x1f_ffffn) | (va & 0x1f_ffffn));
  const pte = await img.u64(Number(pmde & ADDR_MASK) + idx(12n) * 8);
  if (!(pte & 1n)) throw new Error(`PTE for 0x${va.toString(16)} not present`);
  return Number((pte & ADDR_MASK) | (va & 0xfffn));
}

/** The aligned buddy blocks of a free run: largest order ≤ 10 that is aligned and fits. */
export function buddyBlocks(start: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let p = start;
  while (p < end) {
    let o = 10;
    while (o > 0 && (p % 2 ** o !== 0 || p + 2 ** o > end)) o--;
    out.push([p, o]);
    p += 2 ** o;
  }
  return out;
}

// ---------------------------------------------------------------------------
// makedumpfile 1.7.2 model

export interface MdfCounts {
  original: number;
  excluded: number;
  zero: number;
  cache: number;
  cachePrivate: number;
  user: number;
  free: number;
  hwpoison: number;
  offline: number;
  remaining: number;
  hole: number;
}

/** What makedumpfile 1.7.2 can see, from the VMCOREINFO keys (makedumpfile.c read_vmcoreinfo). */
export interface MdfView {
  offlineKey: boolean;
  hwpoisonKey: boolean;
  /** OFFSET(page.compound_order) (and PG_head_mask): a compound head covers its whole order. */
  orderReadable: boolean;
  /** NUMBER(HUGETLB_PAGE_DTOR) with OFFSET(page.compound_dtor): hugetlb heads are user data. */
  hugetlbDtor: boolean;
  buddyKey: boolean;
}

export function mdfView(vi: Map<string, string>): MdfView {
  return {
    offlineKey: vi.has('NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)'),
    hwpoisonKey: vi.has('NUMBER(PG_hwpoison)'),
    orderReadable: vi.has('OFFSET(page.compound_order)') && vi.has('NUMBER(PG_head_mask)'),
    hugetlbDtor: vi.has('NUMBER(HUGETLB_PAGE_DTOR)') && vi.has('OFFSET(page.compound_dtor)'),
    buddyKey: vi.has('NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)'),
  };
}

/**
 * makedumpfile's report for a kdump-compressed run at `level`, predicted
 * from the truth: the first matching rule of __exclude_unnecessary_pages()
 * per pfn (tails only through their head; free 16; cache 2/4; user 8;
 * hwpoison and offline at any level once the mem_map scan runs, which
 * NUMBER(PG_hwpoison) forces), then zero pages (level & 1) among the rest.
 */
export function predictMakedumpfile(h: TruthHeader, runs: readonly TruthRun[], view: MdfView, level: number): MdfCounts {
  const c: MdfCounts = { original: 0, excluded: 0, zero: 0, cache: 0, cachePrivate: 0, user: 0, free: 0, hwpoison: 0, offline: 0, remaining: 0, hole: 0 };
  const scan = (level & 14) !== 0 || view.hwpoisonKey || ((level & 16) !== 0 && view.buddyKey);
  const maxMapnr = Math.max(0, ...h.loads.map((l) => l.end));
  for (const l of h.loads) c.original += l.end - l.start;
  c.hole = maxMapnr - c.original;
  for (const r of runs) {
    if (!r.load) continue;
    let excluded = 0;
    let kept = r.count;
    const take = (n: number, key: keyof MdfCounts): void => {
      c[key] += n;
      excluded += n;
      kept -= n;
    };
    if (scan) {
      switch (r.memmap) {
        case 'free':
          if (level & 16) take(r.count, 'free');
          break;
        case 'cache':
          if (level & 6) take(r.count, 'cache');
          break;
        case 'cache-private':
          if (level & 4) take(r.count, 'cachePrivate');
          break;
        case 'anon':
          if (level & 8) take(r.count, 'user');
          break;
        case 'thp':
          // The head's mapping is anonymous; its order covers the tails only when readable.
          if (level & 8) take(view.orderReadable ? r.count : r.count / 512, 'user');
          break;
        case 'hugetlb':
          if (level & 8 && view.hugetlbDtor && view.orderReadable) take(r.count, 'user');
          break;
        case 'hwpoison':
          if (view.hwpoisonKey) take(r.count, 'hwpoison');
          break;
        case 'offline':
          if (view.offlineKey) take(r.count, 'offline');
          break;
        default:
          break;
      }
    }
    void excluded;
    if (kept > 0 && level & 1 && r.content === 'zero') c.zero += kept;
  }
  c.excluded = c.zero + c.cache + c.cachePrivate + c.user + c.free + c.hwpoison + c.offline;
  c.remaining = c.original - c.excluded;
  return c;
}

/** Parse makedumpfile's --message-level 31 report. */
export function parseMdfReport(text: string): MdfCounts {
  const get = (label: string): number => {
    const m = new RegExp(`${label}\\s*:\\s*0x([0-9a-f]+)`).exec(text);
    if (!m) throw new Error(`no '${label}' in makedumpfile output:\n${text.slice(-2000)}`);
    return Number.parseInt(m[1]!, 16);
  };
  return {
    original: get('Original pages'),
    excluded: get('Excluded pages'),
    zero: get('Pages filled with zero'),
    cache: get('Non-private cache pages'),
    cachePrivate: get('Private cache pages'),
    user: get('User process data pages'),
    free: get('Free pages'),
    hwpoison: get('Hwpoison pages'),
    offline: get('Offline pages'),
    remaining: get('Remaining pages'),
    hole: get('Memory Hole'),
  };
}
