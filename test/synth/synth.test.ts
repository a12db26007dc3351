/**
 * synthesize(): images checked from the outside. The image is walked the
 * way a dump tool walks it (ELF program headers, page tables from
 * init_top_pgt, mem_section or mem_map, struct page) with this file's own
 * code and the kernel-era constants of test/kernel/eras.ts, and compared
 * with the truth manifest; the kpageflags table and the hypervisor-side
 * files are compared with the truth too.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { readKexecSegments } from '../../src/formats/kexec-segments.js';
import { KpageflagsTable } from '../../src/formats/kpageflags/table.js';
import { readBackedRanges, readVirtioMem, readXenHvmMemTypes, readXenPvP2m, p2mAt, hvmMemTypeAt } from '../../src/ram/files.js';
import { ERAS as SYNTH_ERAS, FAULTS, SCENARIOS, readTruth, synthesize, type TruthRun } from '../../src/synth/index.js';
import { ERAS as TEST_ERAS, type Era } from '../kernel/eras.js';
import { PhysImage, buddyBlocks, parseVmcoreinfo, readPhdrs, tempDir, translate, vmcoreinfoText } from './helpers.js';

const MiB = 2 ** 20;
const PAGE_OFFSET = 0xffff888000000000n;
const KTEXT = 0xffffffff80000000n;

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('synth'));
});
afterAll(async () => cleanup());

async function sha1(path: string): Promise<string> {
  return createHash('sha1').update(await readFile(path)).digest('hex');
}

/** Reads struct pages of an image the way makedumpfile does. */
class MemMapWalker {
  private constructor(
    readonly img: PhysImage,
    readonly vi: Map<string, string>,
    private readonly pgd: number,
  ) {}

  static async open(path: string): Promise<MemMapWalker> {
    const { notes } = await readPhdrs(path);
    const vi = parseVmcoreinfo(vmcoreinfoText(notes));
    const physBase = Number(vi.get('NUMBER(phys_base)'));
    const pgd = Number(BigInt(`0x${vi.get('SYMBOL(init_top_pgt)')}`) - KTEXT) + physBase;
    return new MemMapWalker(await PhysImage.open(path), vi, pgd);
  }

  sym(name: string): bigint {
    return BigInt(`0x${this.vi.get(`SYMBOL(${name})`)}`);
  }

  private readonly pages = new Map<bigint, number>();
  private readonly sections = new Map<number, bigint | undefined>();

  async readVirt(va: bigint, len: number): Promise<Buffer> {
    const vp = va >> 12n;
    let pp = this.pages.get(vp);
    if (pp === undefined) {
      pp = (await translate(this.img, this.pgd, vp << 12n)) / 4096;
      this.pages.set(vp, pp);
    }
    return this.img.read(pp * 4096 + Number(va & 0xfffn), len);
  }

  /** mem_section entry of section nr, or undefined if the root or entry is absent. */
  async section(nr: number): Promise<bigint | undefined> {
    if (!this.sections.has(nr)) this.sections.set(nr, await this.readSection(nr));
    return this.sections.get(nr);
  }

  private async readSection(nr: number): Promise<bigint | undefined> {
    const root = await this.readVirt(this.sym('mem_section') + BigInt(Math.floor(nr / 256) * 8), 8);
    const rp = root.readBigUInt64LE(0);
    if (rp === 0n) return undefined;
    const e = (await this.readVirt(rp + BigInt((nr % 256) * 16), 16)).readBigUInt64LE(0);
    return e & 1n ? e : undefined;
  }

  /** Virtual address of pfn's struct page, or undefined when it has none. */
  async pageVa(pfn: number): Promise<bigint | undefined> {
    if (this.vi.has('SYMBOL(mem_map)')) {
      const mm = (await this.readVirt(this.sym('mem_map'), 8)).readBigUInt64LE(0);
      return mm + BigInt(pfn) * 64n;
    }
    const e = await this.section(Math.floor(pfn / 32768));
    if (e === undefined) return undefined;
    return (e & ~0x1fn) + BigInt(pfn) * 64n;
  }

  async page(pfn: number): Promise<Buffer | undefined> {
    const va = await this.pageVa(pfn);
    return va === undefined ? undefined : this.readVirt(va, 64);
  }

  close(): Promise<void> {
    return this.img.close();
  }
}

function samples(r: TruthRun): number[] {
  const end = r.start + r.count;
  const s = new Set([r.start, end - 1, r.start + Math.floor(r.count / 2)]);
  if (r.count > 1) s.add(r.start + 1);
  if (r.count > 512) s.add(r.start + 513);
  return [...s].filter((p) => p >= r.start && p < end);
}

function eraOf(name: string): Era {
  const e = TEST_ERAS.find((x) => x.name === name);
  if (!e) throw new Error(`no test era ${name}`);
  return e;
}

/** Check one struct page against what the truth says it encodes; returns a problem or undefined. */
async function checkStructPage(w: MemMapWalker, era: Era, r: TruthRun, pfn: number): Promise<string | undefined> {
  const sp = await w.page(pfn);
  if (r.memmap === 'none') return sp === undefined ? undefined : 'has a struct page but the truth says none';
  if (!sp) return `no struct page (memmap ${r.memmap})`;
  const flags = sp.readBigUInt64LE(0);
  const lo = Number(flags & 0xffff_ffffn);
  const bit = (n: number | undefined): boolean => n !== undefined && ((lo >>> n) & 1) === 1;
  const mapcount = sp.readInt32LE(48);
  const refcount = sp.readInt32LE(52);
  const mapping = sp.readBigUInt64LE(24);
  const priv = sp.readBigUInt64LE(40);
  const chead = sp.readBigUInt64LE(8);
  const fail = (what: string): string => `${r.memmap}: ${what} (flags 0x${flags.toString(16)}, _mapcount ${mapcount}, mapping 0x${mapping.toString(16)})`;
  const overlap = (era.offlinePage & era.buddy) | 0;
  switch (r.memmap) {
    case 'reserved':
    case 'device':
      return bit(era.pg.reserved) ? undefined : fail('PG_reserved missing');
    case 'plain':
      return mapcount === -1 && !bit(era.pg.lru) && !bit(era.pg.slab) ? undefined : fail('not an untyped page');
    case 'free':
    case 'type-overlap': {
      if (r.memmap === 'type-overlap' && r.cls !== 'free') return mapcount === overlap ? undefined : fail(`_mapcount is not ${overlap}`);
      if (refcount !== 0) return fail('free page with a reference');
      const head = buddyBlocks(r.start, r.start + r.count).find(([h]) => h === pfn);
      const want = r.memmap === 'free' ? era.buddy : overlap;
      if (head) return mapcount === want && priv === BigInt(head[1]) ? undefined : fail(`block head should be type ${want} order ${head[1]}`);
      return mapcount === -1 ? undefined : fail('block tail is typed');
    }
    case 'offline':
      return mapcount === era.offlinePage ? undefined : fail(`_mapcount is not ${era.offlinePage}`);
    case 'cache':
      return bit(era.pg.lru) && !bit(era.pg.private) && mapping !== 0n && (mapping & 1n) === 0n ? undefined : fail('not a page-cache page');
    case 'cache-private':
      return bit(era.pg.lru) && bit(era.pg.private) && (mapping & 1n) === 0n ? undefined : fail('not a private page-cache page');
    case 'anon':
      return bit(era.pg.lru) && bit(era.pg.swapbacked) && (mapping & 1n) === 1n ? undefined : fail('not an anonymous page');
    case 'thp':
    case 'hugetlb': {
      const hugetlb = r.memmap === 'hugetlb';
      const k = (pfn - r.start) % 512;
      const headPfn = pfn - k;
      if (k === 0) {
        if (!bit(era.pg.head)) return fail('head without PG_head');
        if (!hugetlb && (mapping & 1n) !== 1n) return fail('THP head without an anon mapping');
        if (hugetlb && era.hugetlb.kind === 'type' && mapcount !== era.hugetlb.value) return fail('hugetlb head without its page type');
        return undefined;
      }
      const headVa = await w.pageVa(headPfn);
      if (chead !== (headVa! | 1n)) return fail(`compound_head 0x${chead.toString(16)} is not the head's address | 1`);
      if (k === 1) {
        if (era.order === 'tail17') {
          const dtor = hugetlb ? (era.hugetlb.kind === 'dtor' ? era.hugetlb.dtor : -1) : era.thpDtor;
          if (sp[17] !== 9 || sp[16] !== dtor) return fail(`first tail order ${sp[17]} dtor ${sp[16]}`);
        } else {
          if ((lo & 0xff) !== 9) return fail(`folio order ${lo & 0xff}`);
          if (hugetlb && era.hugetlb.kind === 'flags1' && !bit(era.hugetlb.bit)) return fail('PG_hugetlb missing in _flags_1');
        }
      }
      return undefined;
    }
    case 'slab':
      if (era.pg.slab !== undefined) return bit(era.pg.slab) ? undefined : fail('PG_slab missing');
      return mapcount === era.slabType ? undefined : fail(`slab page type ${mapcount}`);
    case 'pgtable':
      return mapcount !== -1 && mapcount !== era.buddy && mapcount !== era.offlinePage ? undefined : fail('page-table page without its type');
    case 'hwpoison':
      return bit(era.pg.hwpoison) ? undefined : fail('PG_hwpoison missing');
    default:
      return `unexpected memmap ${r.memmap}`;
  }
}

const KPF = { BUDDY: 10, SLAB: 7, ANON: 12, HEAD: 15, TAIL: 16, HUGE: 17, HWPOISON: 19, NOPAGE: 20, THP: 22, OFFLINE: 23, ZERO_PAGE: 24 } as const;

/** The kpageflags bits the kernel's stable_page_flags() would report for pfn of run r. */
function expectedKpf(era: Era, r: TruthRun, pfn: number): { set: number[]; clear: number[]; reserved: boolean } {
  const set: number[] = [];
  const clear: number[] = [];
  const slabEra = era.pg.slab !== undefined;
  const k = (pfn - r.start) % 512;
  let offline = r.memmap === 'offline' || (r.memmap === 'type-overlap' && r.cls !== 'free');
  let buddy = r.memmap === 'free' || (r.memmap === 'type-overlap');
  if (r.memmap === 'type-overlap' && r.cls === 'free') offline = buddyBlocks(r.start, r.start + r.count).some(([h]) => h === pfn);
  if (r.memmap === 'slab' && r.variant === 'adversarial' && slabEra) {
    offline = pfn % 3 === 2;
    buddy = pfn % 3 === 1;
  }
  if (r.kpf === 'clear-offline') offline = false;
  if (r.kpf === 'clear-buddy') buddy = false;
  (offline ? set : clear).push(KPF.OFFLINE);
  (buddy ? set : clear).push(KPF.BUDDY);
  (r.memmap === 'none' || r.memmap === 'device' ? set : clear).push(KPF.NOPAGE);
  (r.memmap === 'slab' ? set : clear).push(KPF.SLAB);
  (r.memmap === 'hwpoison' ? set : clear).push(KPF.HWPOISON);
  (r.variant === 'zero-page' ? set : clear).push(KPF.ZERO_PAGE);
  (r.memmap === 'thp' ? set : clear).push(KPF.THP);
  (r.memmap === 'hugetlb' ? set : clear).push(KPF.HUGE);
  const compound = r.memmap === 'thp' || r.memmap === 'hugetlb';
  (compound && k === 0 ? set : clear).push(KPF.HEAD);
  (compound && k !== 0 ? set : clear).push(KPF.TAIL);
  (r.memmap === 'anon' || r.memmap === 'thp' ? set : clear).push(KPF.ANON);
  const reserved = r.memmap === 'reserved' || (r.memmap === 'offline' && r.cls === 'never-onlined' && !['6.11', '6.12'].includes(era.name));
  return { set, clear, reserved };
}

interface Image {
  out: string;
  scenario: string;
  kernel: string;
}

const made = new Map<string, Promise<Image>>();

/** Generate (once per argument set) an image in the suite's folder. */
function make(scenario: string, kernel: string, extra: Partial<Parameters<typeof synthesize>[0]> = {}, size = 64 * MiB): Promise<Image> {
  const name = `${scenario}-${kernel}-${extra.memoryModel ?? 's'}-${extra.physBase ?? 0}-${(extra.faults ?? []).join('+')}-${extra.seed ?? 1}-${size / MiB}`;
  let p = made.get(name);
  if (!p) {
    const out = join(dir, `${name}.vmcore`);
    p = synthesize({ scenario, out, size, kernel, ...extra }).then(() => ({ out, scenario, kernel }));
    made.set(name, p);
  }
  return p;
}

async function checkImage(img: Image): Promise<string[]> {
  const problems: string[] = [];
  const { header, runs } = await readTruth(`${img.out}.truth`);
  const era = eraOf(img.kernel);
  const { phdrs, type, machine, fileSize } = await readPhdrs(img.out);
  expect(type).toBe(4);
  expect(machine).toBe(62);
  const loads = phdrs.filter((p) => p.type === 1);
  // PT_LOADs: as the truth lists them, p_vaddr = PAGE_OFFSET + p_paddr, page-aligned, filesz = memsz.
  expect(loads.map((l) => [l.paddr / 4096, (l.paddr + l.filesz) / 4096])).toEqual(header.loads.map((l) => [l.start, l.end]));
  for (const l of loads) {
    expect(l.vaddr).toBe(PAGE_OFFSET + BigInt(l.paddr));
    expect(l.offset % 4096).toBe(0);
    expect(l.memsz).toBe(l.filesz);
  }
  const last = loads[loads.length - 1]!;
  expect(fileSize).toBe(last.offset + last.filesz);

  const w = await MemMapWalker.open(img.out);
  const kpf = await KpageflagsTable.open(`${img.out}.kpageflags`);
  expect(kpf.entries).toBe(header.maxPfn);
  const lo = new Uint32Array(1);
  const hi = new Uint32Array(1);
  try {
    // init_uts_ns holds the era's release.
    const name = Number(w.vi.get('OFFSET(uts_namespace.name)') ?? 4);
    const uts = await w.readVirt(w.sym('init_uts_ns') + BigInt(name), 390);
    expect(uts.toString('latin1', 0, 5)).toBe('Linux');
    expect(uts.toString('latin1', 130, 195).replace(/\0.*$/s, '')).toBe(w.vi.get('OSRELEASE'));
    const zero = Buffer.alloc(4096);
    for (const r of runs) {
      for (const pfn of samples(r)) {
        // Content, from the image itself.
        if (r.load) {
          const page = await w.img.read(pfn * 4096, 4096);
          const isZero = page.equals(zero);
          if (r.content === 'zero' && !isZero) problems.push(`pfn 0x${pfn.toString(16)} (${r.cls}) should read as zeros`);
          if (r.content !== 'zero' && isZero) problems.push(`pfn 0x${pfn.toString(16)} (${r.cls}, ${r.content}) reads as zeros`);
          if (r.content === 'data' && page.readUInt32LE(0) + page.readUInt32LE(4) * 2 ** 32 !== pfn) problems.push(`pfn 0x${pfn.toString(16)} does not carry its stamp`);
        } else if (w.img.has(pfn * 4096)) problems.push(`pfn 0x${pfn.toString(16)} is in a PT_LOAD but the truth says noload`);
        const sp = await checkStructPage(w, era, r, pfn);
        if (sp) problems.push(`pfn 0x${pfn.toString(16)} (${r.cls}): ${sp}`);
        await kpf.read(pfn, 1, lo, hi);
        const e = expectedKpf(era, r, pfn);
        for (const b of e.set) if (!((lo[0]! >>> b) & 1)) problems.push(`pfn 0x${pfn.toString(16)} (${r.cls}/${r.memmap}): kpageflags bit ${b} missing`);
        for (const b of e.clear) if ((lo[0]! >>> b) & 1) problems.push(`pfn 0x${pfn.toString(16)} (${r.cls}/${r.memmap}): kpageflags bit ${b} set`);
        if (((hi[0]! & 1) === 1) !== e.reserved) problems.push(`pfn 0x${pfn.toString(16)} (${r.cls}/${r.memmap}): KPF_RESERVED ${hi[0]! & 1}`);
        if (problems.length > 20) return problems;
      }
    }
  } finally {
    await w.close();
    await kpf.close();
  }
  return problems;
}

const ERA_NAMES = SYNTH_ERAS.map((e) => e.name);

describe('synthesize: every scenario in every era it supports', () => {
  const combos: Array<[string, string]> = [];
  for (const s of SCENARIOS) for (const e of ERA_NAMES) combos.push([s.name, e]);
  it.each(combos)('%s %s: image, struct pages and kpageflags agree with the truth', async (scenario, kernel) => {
    let img: Image;
    try {
      img = await make(scenario, kernel);
    } catch (err) {
      // Only the documented unsupported pairs may refuse.
      expect(err).toBeInstanceOf(UsageError);
      expect([`virtio-mem 4.19`, `vmware-balloon 4.19`]).toContain(`${scenario} ${kernel}`);
      return;
    }
    expect(await checkImage(img)).toEqual([]);
  });
});

describe('synthesize: memory models and phys_base', () => {
  it.each([
    ['plain', '5.10', 'flatmem', 0],
    ['xen-hvm-balloon', '4.19', 'flatmem', 0x200000],
    ['virtio-balloon', '6.12', 'sparsemem', 0x4000000],
    ['xen-pv-balloon', '6.1', 'sparsemem', 0x1000000],
  ] as const)('%s %s %s phys_base %i', async (scenario, kernel, memoryModel, physBase) => {
    const img = await make(scenario, kernel, { memoryModel, physBase }, 96 * MiB);
    const { notes } = await readPhdrs(img.out);
    const vi = parseVmcoreinfo(vmcoreinfoText(notes));
    expect(Number(vi.get('NUMBER(phys_base)'))).toBe(physBase);
    expect(vi.has('SYMBOL(mem_map)')).toBe(memoryModel === 'flatmem');
    expect(vi.has('SYMBOL(mem_section)')).toBe(memoryModel === 'sparsemem');
    expect(await checkImage(img)).toEqual([]);
  });
});

describe('synthesize: VMCOREINFO per era', () => {
  it.each(ERA_NAMES)('%s exports what that kernel exports', async (kernel) => {
    const img = await make('plain', kernel);
    const { notes } = await readPhdrs(img.out);
    const vi = parseVmcoreinfo(vmcoreinfoText(notes));
    const era = eraOf(kernel);
    expect(vi.get('NUMBER(PG_hwpoison)')).toBe(String(era.pg.hwpoison));
    expect(vi.get('NUMBER(PG_lru)')).toBe(String(era.pg.lru));
    expect(vi.get('NUMBER(PG_head_mask)')).toBe(String(2 ** era.pg.head));
    expect(vi.get('NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)')).toBe(String(era.buddy));
    expect(vi.get('NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)')).toBe(era.offlineKey === undefined ? undefined : String(era.offlineKey));
    expect(vi.get('NUMBER(PG_slab)')).toBe(era.pg.slab === undefined ? undefined : String(era.pg.slab));
    expect(vi.get('NUMBER(HUGETLB_PAGE_DTOR)')).toBe(era.hugetlb.kind === 'dtor' ? String(era.hugetlb.dtor) : undefined);
    expect(vi.has('OFFSET(page.compound_order)')).toBe(era.order === 'tail17');
    expect(vi.get('NUMBER(pgtable_l5_enabled)')).toBe('0');
    expect(vi.get('SYMBOL(swapper_pg_dir)')).toBe(vi.get('SYMBOL(init_top_pgt)'));
    expect(vi.has('SYMBOL(_stext)')).toBe(true);
    // 6.9 added SYMBOL(vmemmap) and NUMBER(VMALLOC_START).
    expect(vi.has('SYMBOL(vmemmap)')).toBe(['6.11', '6.12'].includes(kernel));
    expect(vi.has('NUMBER(VMALLOC_START)')).toBe(['6.11', '6.12'].includes(kernel));
    expect(vi.get('OSRELEASE')).toMatch(new RegExp(`^${kernel.split('-')[0]!.replace('.', '\\.')}\\.`));
  });
});

describe('synthesize: scenario shapes', () => {
  it('vmware-balloon: offline runs are whole 2 MiB balloon pages', async () => {
    const img = await make('vmware-balloon', '6.1', {}, 256 * MiB);
    const { runs } = await readTruth(`${img.out}.truth`);
    const off = runs.filter((r) => r.cls === 'offline');
    expect(off.length).toBeGreaterThan(0);
    for (const r of off) {
      expect(r.owner).toBe('vmw-balloon');
      expect(r.start % 512).toBe(0);
      expect(r.count % 512).toBe(0);
      expect(r.ram).toBe(false);
    }
  });

  it('xen-hvm-balloon: balloon unbacked, grant pages backed and unflagged, scratch section outside the image', async () => {
    const img = await make('xen-hvm-balloon', '6.1');
    const { header, runs } = await readTruth(`${img.out}.truth`);
    const balloon = runs.filter((r) => r.cls === 'offline');
    expect(balloon.length).toBeGreaterThan(0);
    for (const r of balloon) expect([r.ram, r.load, r.memmap, r.content]).toEqual([false, true, 'offline', 'zero']);
    const grant = runs.filter((r) => r.cls === 'grant');
    expect(grant.length).toBeGreaterThan(0);
    for (const r of grant) expect([r.ram, r.memmap]).toEqual([true, 'plain']);
    const dev = runs.filter((r) => r.cls === 'device');
    const first = dev[0]!;
    const end = dev[dev.length - 1]!.start + dev[dev.length - 1]!.count;
    expect(first.start % 32768).toBe(0);
    expect(end % 32768).toBe(0);
    for (const r of dev) expect([r.load, r.memmap, r.owner]).toEqual([false, 'device', 'xen-scratch']);
    for (const l of header.loads) expect(l.end <= first.start || l.start >= end).toBe(true);
    // Its section is present and tainted ZONE_DEVICE (SECTION_TAINT_ZONE_DEVICE, 5.12+).
    const w = await MemMapWalker.open(img.out);
    try {
      const e = await w.section(first.start / 32768);
      expect(e).toBeDefined();
      expect(Number(e! & 0x1fn)).toBe(0x13);
      const boot = await w.section(0);
      expect(Number(boot! & 0x1fn)).toBe(0xf);
    } finally {
      await w.close();
    }
    // Memory types: ram_rw exactly where the truth says backed.
    const mt = await readXenHvmMemTypes(`${img.out}.memtypes`);
    for (const r of runs) {
      const t = hvmMemTypeAt(mt, r.start, r.start + r.count);
      expect(t.value === 'ram_rw', `pfn 0x${r.start.toString(16)} ${r.cls}`).toBe(r.ram);
      expect(t.count).toBeGreaterThanOrEqual(1);
    }
    // Kexec segments lie in populated RAM, clear of the balloon.
    const segs = await readKexecSegments(`${img.out}.kexec`);
    expect(segs.length).toBeGreaterThan(0);
    for (const s of segs) {
      for (const r of runs) {
        const overlap = r.start * 4096 < s.mem + s.memsz && s.mem < (r.start + r.count) * 4096;
        if (overlap) expect([r.cls, r.ram, r.load]).toEqual(['kexec', true, true]);
      }
    }
  });

  it('xen-hvm-balloon 4.19: the balloon is not flagged (PG_offline came in 5.1) and there is no scratch range', async () => {
    const img = await make('xen-hvm-balloon', '4.19');
    const { runs } = await readTruth(`${img.out}.truth`);
    const balloon = runs.filter((r) => r.cls === 'offline');
    expect(balloon.length).toBeGreaterThan(0);
    for (const r of balloon) expect(r.memmap).toBe('plain');
    expect(runs.some((r) => r.cls === 'device')).toBe(false);
  });

  it('xen-pv-balloon: RAM above 128 GiB, a P2M with frames, INVALID entries and identity holes', async () => {
    const img = await make('xen-pv-balloon', '6.1');
    const { header, runs } = await readTruth(`${img.out}.truth`);
    expect(header.kernelMaxPfn * 4096).toBeGreaterThan(128 * 2 ** 30);
    for (const r of runs) if (r.load) expect(r.cls).not.toBe('hole');
    const p2m = await readXenPvP2m(`${img.out}.p2m`);
    const seen = new Set<number>();
    for (const r of runs) {
      if (r.start >= p2m.p2mSize) break;
      for (const pfn of samples(r)) {
        const e = p2mAt(p2m, pfn, pfn + 1).value;
        if (r.ram) {
          expect(e.kind).toBe('mfn');
          if (e.kind === 'mfn') {
            expect(seen.has(e.mfn)).toBe(false);
            seen.add(e.mfn);
          }
        } else expect(e.kind).toBe(r.cls === 'hole' ? 'identity' : 'invalid');
      }
    }
    expect(runs.some((r) => r.cls === 'offline' && r.owner === 'xen-balloon')).toBe(true);
  });

  it('virtio-mem: unplugged subblocks offline inside added blocks, unplugged blocks not added, device state agrees', async () => {
    const img = await make('virtio-mem', '6.6');
    const { runs } = await readTruth(`${img.out}.truth`);
    const unplugged = runs.filter((r) => r.cls === 'unplugged');
    const inImage = unplugged.filter((r) => r.load);
    const notAdded = unplugged.filter((r) => !r.load);
    expect(inImage.length).toBeGreaterThan(0);
    expect(notAdded.length).toBeGreaterThan(0);
    for (const r of inImage) expect([r.memmap, r.ram, r.start % 512, r.count % 512]).toEqual(['offline', false, 0, 0]);
    for (const r of notAdded) expect([r.memmap, r.start % 32768, r.count % 32768]).toEqual(['none', 0, 0]);
    const st = await readVirtioMem(`${img.out}.virtio-mem`);
    const dev = st.devices[0]!;
    const plugged = (pfn: number): boolean => dev.plugged.some((p) => pfn * 4096 >= p.addr && pfn * 4096 < p.addr + p.size);
    for (const r of runs) {
      if (r.start * 4096 < dev.addr || r.start * 4096 >= dev.addr + dev.size) continue;
      expect(plugged(r.start), `pfn 0x${r.start.toString(16)} ${r.cls}`).toBe(r.ram);
    }
  });

  it('hv-balloon: a hot-added block only partly onlined, the rest never onlined and in the image', async () => {
    const img = await make('hv-balloon', '5.10');
    const { header, runs } = await readTruth(`${img.out}.truth`);
    const never = runs.filter((r) => r.cls === 'never-onlined');
    expect(never.length).toBe(1);
    const n = never[0]!;
    expect([n.memmap, n.ram, n.load, n.content]).toEqual(['offline', false, true, 'zero']);
    expect(header.loads.some((l) => l.start <= n.start && n.start + n.count <= l.end)).toBe(true);
    expect(runs.some((r) => r.cls === 'offline' && r.owner === 'hv-balloon')).toBe(true);
    const backed = await readBackedRanges(`${img.out}.backed`);
    const isBacked = (pfn: number): boolean => backed.runs.some((b) => pfn >= b.start && pfn < b.start + b.count);
    expect(isBacked(n.start)).toBe(false);
  });

  it('plain: every class makedumpfile filters is present', async () => {
    const img = await make('plain', '5.10', {}, 256 * MiB);
    const { runs } = await readTruth(`${img.out}.truth`);
    const classes = new Set(runs.map((r) => r.cls));
    for (const c of ['free', 'cache', 'cache-private', 'anon', 'thp', 'hugetlb', 'slab', 'zero', 'hwpoison', 'kernel', 'meta']) expect(classes).toContain(c);
    expect(runs.some((r) => r.variant === 'adversarial')).toBe(true);
    expect(runs.some((r) => r.variant === 'zero-page')).toBe(true);
    // Free runs cover several buddy orders.
    const orders = new Set(runs.filter((r) => r.memmap === 'free').flatMap((r) => buddyBlocks(r.start, r.start + r.count).map(([, o]) => o)));
    expect(orders.size).toBeGreaterThanOrEqual(4);
  });
});

describe('synthesize: faults', () => {
  it.each([
    ['unflagged-balloon', 'virtio-balloon', '5.10'],
    ['backed-offline', 'xen-hvm-balloon', '6.1'],
    ['kexec-over-balloon', 'xen-hvm-balloon', '5.10'],
    ['kpageflags-mismatch', 'hv-balloon', '6.12'],
    ['scratch-in-ptload', 'xen-hvm-balloon', '6.1'],
    ['stale-unbacked', 'vmware-balloon', '6.6'],
    ['type-overlap', 'virtio-mem', '6.11'],
    ['type-overlap', 'plain', '4.19'],
  ])('%s in %s %s is planted, recorded and visible', async (fault, scenario, kernel) => {
    const img = await make(scenario, kernel, { faults: [fault] });
    const { header, runs } = await readTruth(`${img.out}.truth`);
    expect(header.faults).toEqual([fault]);
    const hit = runs.filter((r) => r.fault === fault);
    expect(hit.length).toBeGreaterThan(0);
    // Whatever the fault, the image still agrees with what the truth says about it.
    expect(await checkImage(img)).toEqual([]);
    const backed = await readBackedRanges(`${img.out}.backed`);
    const isBacked = (pfn: number): boolean => backed.runs.some((b) => pfn >= b.start && pfn < b.start + b.count);
    for (const r of hit) {
      switch (fault) {
        case 'unflagged-balloon':
          expect([r.cls, r.memmap, r.ram]).toEqual(['offline', 'plain', false]);
          break;
        case 'backed-offline':
          expect([r.memmap, r.ram, r.content]).toEqual(['offline', true, 'data']);
          expect(isBacked(r.start)).toBe(true);
          break;
        case 'kexec-over-balloon': {
          const segs = await readKexecSegments(`${img.out}.kexec`);
          expect(segs.some((s) => s.mem < (r.start + r.count) * 4096 && r.start * 4096 < s.mem + s.memsz)).toBe(true);
          expect([r.cls, r.ram]).toEqual(['offline', false]);
          break;
        }
        case 'kpageflags-mismatch':
          expect(r.kpf).toBeDefined();
          break;
        case 'scratch-in-ptload':
          expect([r.cls, r.load]).toEqual(['device', true]);
          expect(header.loads.some((l) => l.start <= r.start && r.start < l.end)).toBe(true);
          break;
        case 'stale-unbacked':
          expect([r.ram, r.load, r.content]).toEqual([false, true, 'data']);
          expect(isBacked(r.start)).toBe(false);
          break;
        case 'type-overlap':
          expect(r.memmap).toBe('type-overlap');
          break;
      }
    }
  });

  it.each([
    [{ scenario: 'plain', faults: ['unflagged-balloon'] }, /cannot be planted in plain/],
    [{ scenario: 'virtio-balloon', faults: ['kexec-over-balloon'] }, /cannot be planted/],
    [{ scenario: 'plain', kernel: '6.12', faults: ['type-overlap'] }, /one type/],
    [{ scenario: 'xen-hvm-balloon', kernel: '4.19', faults: ['scratch-in-ptload'] }, /scratch/],
    [{ scenario: 'xen-hvm-balloon', kernel: '4.19', faults: ['unflagged-balloon'] }, /no pages it could act on/],
    [{ scenario: 'virtio-balloon', faults: ['no-such-fault'] }, /unknown fault/],
  ])('refuses %j', async (o, msg) => {
    const out = join(dir, 'refused.vmcore');
    await expect(synthesize({ size: 64 * MiB, out, ...o })).rejects.toThrow(msg);
    await expect(synthesize({ size: 64 * MiB, out, ...o })).rejects.toBeInstanceOf(UsageError);
  });

  it('lists every fault with its hosts', () => {
    expect(FAULTS.map((f) => f.name).sort()).toEqual(
      ['backed-offline', 'kexec-over-balloon', 'kpageflags-mismatch', 'scratch-in-ptload', 'stale-unbacked', 'type-overlap', 'unflagged-balloon'].sort(),
    );
    for (const f of FAULTS) for (const h of f.hosts) expect(SCENARIOS.map((s) => s.name)).toContain(h);
  });
});

describe('synthesize: determinism and argument checks', () => {
  it('same arguments give byte-identical files; another seed does not', async () => {
    const a = await tempDir('det-a');
    const b = await tempDir('det-b');
    try {
      const opts = { scenario: 'xen-hvm-balloon', size: 64 * MiB, seed: 7, kernel: '6.1', faults: ['kpageflags-mismatch'] };
      const ra = await synthesize({ ...opts, out: join(a.dir, 'g.vmcore') });
      await synthesize({ ...opts, out: join(b.dir, 'g.vmcore') });
      const files = (await readdir(a.dir)).sort();
      expect(files).toEqual((await readdir(b.dir)).sort());
      expect(files.length).toBe(Object.keys(ra.files).length);
      for (const f of files) expect(await sha1(join(b.dir, f)), f).toBe(await sha1(join(a.dir, f)));
      await synthesize({ ...opts, seed: 8, out: join(b.dir, 'h.vmcore') });
      expect(await sha1(join(b.dir, 'h.vmcore'))).not.toBe(await sha1(join(a.dir, 'g.vmcore')));
      expect(await sha1(join(b.dir, 'h.vmcore.truth'))).not.toBe(await sha1(join(a.dir, 'g.vmcore.truth')));
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  it.each([
    [{ scenario: 'nope' }, /unknown scenario/],
    [{ kernel: '5.4' }, /unknown kernel era/],
    [{ size: 64 * MiB + 100 }, /whole number of 4 KiB pages/],
    [{ size: 4 * MiB }, /too small/],
    [{ size: -4096 }, /positive/],
    [{ seed: -1 }, /seed/],
    [{ seed: 1.5 }, /seed/],
    [{ physBase: 0x1000 }, /2 MiB/],
    [{ memoryModel: 'discontig' as 'flatmem' }, /memory model/],
    [{ scenario: 'virtio-mem', kernel: '4.19' }, /5\.10 or later/],
    [{ scenario: 'hv-balloon', memoryModel: 'flatmem' as const }, /SPARSEMEM/],
    [{ scenario: 'xen-pv-balloon', memoryModel: 'flatmem' as const }, /too small for its layout/],
  ])('rejects %j before writing anything', async (bad, msg) => {
    const t = await tempDir('bad');
    try {
      const p = synthesize({ scenario: 'virtio-balloon', size: 64 * MiB, out: join(t.dir, 'x.vmcore'), ...bad });
      await expect(p).rejects.toBeInstanceOf(UsageError);
      await expect(synthesize({ scenario: 'virtio-balloon', size: 64 * MiB, out: join(t.dir, 'x.vmcore'), ...bad })).rejects.toThrow(msg);
      expect(await readdir(t.dir)).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });

  it('leaves nothing behind when the output cannot be written', async () => {
    const t = await tempDir('fail');
    try {
      await expect(synthesize({ scenario: 'plain', size: 64 * MiB, out: join(t.dir, 'missing-dir', 'x.vmcore') })).rejects.toThrow();
      expect(await readdir(t.dir)).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });

  it('reports progress up to the PT_LOAD total and summary counts that match the truth', async () => {
    const t = await tempDir('prog');
    try {
      const seen: Array<[number, number]> = [];
      const r = await synthesize({ scenario: 'virtio-balloon', size: 64 * MiB, out: join(t.dir, 'p.vmcore'), onProgress: (d, n) => seen.push([d, n]) });
      const { header, runs } = await readTruth(r.files.truth);
      const total = header.loads.reduce((a, l) => a + l.end - l.start, 0) * 4096;
      expect(seen.length).toBeGreaterThan(1);
      expect(seen[seen.length - 1]).toEqual([total, total]);
      for (let i = 1; i < seen.length; i++) expect(seen[i]![0]).toBeGreaterThan(seen[i - 1]![0]);
      const offline = runs.filter((x) => x.cls === 'offline').reduce((a, x) => a + x.count, 0);
      expect(r.pages.offline).toBe(offline);
      expect(r.maxPfn).toBe(header.maxPfn);
      expect(r.ptLoads).toBe(header.loads.length);
    } finally {
      await t.cleanup();
    }
  });
});
