/**
 * A synthetic guest: options validated, layout placed, plan built, faults
 * planted. Nothing is written here; image.ts and side-files.ts stream the
 * outputs from a Guest, and tests use the same Guest to regenerate any
 * page of the image.
 */
import { UsageError } from '../core/errors.js';
import { ContentGenerator } from './content.js';
import { DEFAULT_ERA, ERAS, eraByName, type EraDef } from './eras.js';
import { FAULT_DEFS, faultByName } from './faults.js';
import { IMAGE_FIXED_PAGES, KernelLayout, type DeviceRange, type ImagePlan, type MemoryModel, type RamRange } from './layout.js';
import { generateMix, type MixEntry, type MixProfile } from './mix.js';
import { PAGES_PER_SECTION, PAGE_SIZE, PlanBuilder, type Plan } from './plan.js';
import { Rng } from './rng.js';
import {
  FIELDS,
  SCENARIO_DEFS,
  ramPosition,
  scenarioByName,
  type GuestDraftApi,
  type KexecSegmentPlan,
  type ScenarioContext,
  type ScenarioDef,
  type VirtioMemPlan,
} from './scenarios.js';
import { planPrintk, type PrintkPlan } from './printk.js';
import { makePageEncoder, type PageEncoder } from './structpage.js';
import { buildVmcoreinfo } from './vmcoreinfo.js';

export interface GuestOptions {
  scenario: string;
  /** Bytes of guest RAM. */
  size: number;
  seed?: number;
  kernel?: string;
  faults?: string[];
  memoryModel?: MemoryModel;
  physBase?: number;
}

/** A PT_LOAD of the image. */
export interface LoadSegment {
  start: number;
  end: number;
}

export interface Guest {
  scenario: string;
  era: EraDef;
  seed: number;
  size: number;
  model: MemoryModel;
  physBase: number;
  faults: string[];
  layout: KernelLayout;
  plan: Plan;
  /** PT_LOAD segments of physical memory, ascending, as pfn ranges. */
  loads: LoadSegment[];
  /**
   * A kexec-style kernel-text PT_LOAD (p_vaddr in __START_KERNEL_map) over
   * the image, first in the program headers as kexec-tools and
   * kexec_file_load write it, or undefined (as in QEMU's dumps).
   */
  textLoad: LoadSegment | undefined;
  /** One past the last pfn of the truth and the kpageflags table. */
  maxPfn: number;
  /** The kernel's max_pfn (highest RAM or device pfn + 1). */
  kernelMaxPfn: number;
  ram: RamRange[];
  devices: DeviceRange[];
  kexec: KexecSegmentPlan[];
  virtioMem: VirtioMemPlan[];
  sideFiles: Array<'xen-hvm' | 'xen-pv' | 'virtio-mem' | 'kexec'>;
  vmcoreinfo: string;
  /** The kernel log: its truth, VMCOREINFO keys and the CPUs' NT_PRSTATUS notes. */
  printk: PrintkPlan;
  encoder: PageEncoder;
  content: ContentGenerator;
  /** Render pages [pfn, pfn+count) exactly as the image holds them (zeros where it holds none). */
  fillPages(pfn: number, count: number, dst: Uint8Array, off: number): void;
}

const MIX_OWNER = '\u0000mix:';
const MiB = 2 ** 20;

function usage(msg: string): never {
  throw new UsageError(msg);
}

/** Check options and build the guest; throws UsageError on bad arguments. */
export function buildGuest(o: GuestOptions): Guest {
  const { sc, era, model, seed, physBase, size, faults } = checkOptions(o);
  const rng = new Rng(seed, 0x5eed);
  const ctx: ScenarioContext = { era, size, seed, model, rng };
  const draft = sc.draft(ctx);
  const ram = [...draft.ram].sort((a, b) => a.start - b.start);
  const imageRng = new Rng(seed, 0x1a9e);
  const layout = placeKernel(sc.name, ctx, physBase, ram, draft.devices, imageRng);
  const kernelMaxPfn = layout.maxPfn;
  const maxPfn = model === 'sparsemem' ? Math.ceil(kernelMaxPfn / PAGES_PER_SECTION) * PAGES_PER_SECTION : kernelMaxPfn;

  const plan = new PlanBuilder(maxPfn, FIELDS.hole);
  const mixes = new MixPaint(plan);
  for (const r of ram) mixes.paint(r.start, r.end - r.start, draft.profile);
  const home = ram.find((r) => r.start <= layout.kbase && layout.kbase < r.end)!;
  const api: GuestDraftApi = {
    ctx,
    layout,
    plan,
    afterMeta: layout.metaEnd,
    homeEnd: home.end,
    paintMix: (start, count, p) => mixes.paint(start, count, p),
    paint: (start, count, f) => plan.paint(start, count, f),
  };
  draft.populate?.(api);
  paintKernel(plan, layout, mixes, draft.profile);
  reserveCrashKernel(plan, layout, draft.kexec, size, home.end);
  mixes.generate(ram, rng, size);
  draft.finish?.(api);
  for (const name of faults) {
    const ok = faultByName(name)!.apply({ era, scenario: sc.name, plan, rng: rng.fork(0xfa17) });
    if (!ok) usage(`fault ${name}: ${sc.name} with kernel ${era.name} has no pages it could act on`);
  }
  // The kernel log (in the image, or memblock memory taken from a plain kernel run).
  const printk = planPrintk({ era, layout, plan, seed, ram, scenario: sc.name, homeEnd: home.end });
  // Struct pages exist exactly for present sections (or every pfn below max_pfn with FLATMEM).
  fixStructPagePresence(plan, layout);
  const finished = plan.finish();

  // kexec-tools takes [_text, _end) from /proc/kcore (some versions round it
  // to the mapping); QEMU's dump-guest-memory writes none.
  const textLoad = imageRng.chance(0.7)
    ? { start: layout.kbase, end: imageRng.chance(0.5) ? layout.imageEnd : layout.kbase + layout.imagePages }
    : undefined;
  const guest: Guest = {
    scenario: sc.name,
    era,
    seed,
    size,
    model,
    physBase,
    faults,
    layout,
    plan: finished,
    loads: computeLoads(finished, ram, draft.devices),
    textLoad,
    maxPfn,
    kernelMaxPfn,
    ram,
    devices: draft.devices,
    kexec: draft.kexec,
    virtioMem: draft.virtioMem,
    sideFiles: draft.sideFiles,
    vmcoreinfo: buildVmcoreinfo({ era, layout, seed, printk: printk.vmcoreinfo }),
    printk,
    encoder: makePageEncoder(finished, era, layout, seed),
    content: new ContentGenerator(seed),
    fillPages: (pfn, count, dst, off) => fillPages(guest, pfn, count, dst, off),
  };
  return guest;
}

/** The options, checked and defaulted (UsageError on the first bad one). */
function checkOptions(o: GuestOptions): { sc: ScenarioDef; era: EraDef; model: MemoryModel; seed: number; physBase: number; size: number; faults: string[] } {
  const sc = scenarioByName(o.scenario) ?? usage(`unknown scenario '${o.scenario}' (known: ${SCENARIO_DEFS.map((s) => s.name).join(', ')})`);
  const eraName = o.kernel ?? DEFAULT_ERA;
  const era = eraByName(eraName) ?? usage(`unknown kernel era '${eraName}' (known: ${ERAS.map((e) => e.name).join(', ')})`);
  const model: MemoryModel = o.memoryModel ?? 'sparsemem';
  if (model !== 'sparsemem' && model !== 'flatmem') usage(`unknown memory model '${String(model)}' (sparsemem or flatmem)`);
  const seed = o.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffff_ffff) usage(`seed ${seed} is not an integer in [0, 2^32)`);
  const physBase = o.physBase ?? 0;
  if (!Number.isSafeInteger(physBase) || physBase < 0) usage(`phys_base ${physBase} is not a non-negative integer`);
  if (physBase % (2 * MiB) !== 0) usage(`phys_base 0x${physBase.toString(16)} is not a multiple of 2 MiB (CONFIG_PHYSICAL_ALIGN)`);
  if (physBase > 1024 * MiB) usage(`phys_base 0x${physBase.toString(16)} is above 1 GiB`);
  const size = o.size;
  if (!Number.isSafeInteger(size) || size <= 0) usage(`size ${size} is not a positive number of bytes`);
  if (size % PAGE_SIZE !== 0) usage(`size ${size} is not a whole number of 4 KiB pages`);
  if (size < sc.minSize) usage(`size ${size / MiB} MiB is too small for ${sc.name} (at least ${sc.minSize / MiB} MiB)`);
  if (size > 2 ** 44) usage(`size ${size} is above 16 TiB`);
  const why = sc.unsupported(era, model);
  if (why) usage(`${sc.name} with kernel ${era.name} (${model}): ${why}`);
  const faults = [...new Set(o.faults ?? [])];
  for (const name of faults) {
    const f = faultByName(name) ?? usage(`unknown fault '${name}' (known: ${FAULT_DEFS.map((x) => x.name).join(', ')})`);
    if (!f.hosts.includes(sc.name)) usage(`fault ${name} cannot be planted in ${sc.name} (hosts: ${f.hosts.join(', ')})`);
    const no = f.unsupported?.(era, model);
    if (no) usage(`fault ${name}: ${no}`);
  }
  return { sc, era, model, seed, physBase, size, faults };
}

/** The kernel image (2 MiB pages, bigger for bigger guests: a real one is 20-60 MiB) and the stub's metadata, placed. */
function placeKernel(scenario: string, ctx: ScenarioContext, physBase: number, ram: RamRange[], devices: DeviceRange[], imageRng: Rng): KernelLayout {
  const imageSize = Math.min(32, Math.max(2, 2 * Math.round(ctx.size / 2 ** 30))) * MiB;
  const image = imagePlan(imageSize / PAGE_SIZE, imageRng);
  const nodename = `dumpsieve-${scenario}`;
  return new KernelLayout({ era: ctx.era, model: ctx.model, physBase, ram, devices, imageSize, image, nodename });
}

/**
 * RAM painted with a mix profile, as placeholder runs the profile's
 * generator replaces once everything fixed is in place.
 */
class MixPaint {
  private readonly profiles = new Map<string, MixProfile>();
  constructor(private readonly plan: PlanBuilder) {}

  paint(start: number, count: number, p: MixProfile): void {
    this.profiles.set(p.name, p);
    this.plan.paint(start, count, { cls: 'free', ram: true, load: true, memmap: 'free', content: 'data', owner: MIX_OWNER + p.name });
  }

  /** Replace every placeholder run with its profile's generated runs. */
  generate(ram: readonly RamRange[], rng: Rng, size: number): void {
    const where = ramPosition(ram);
    // Runs get longer with the guest (up to 4x at 64 GiB) so a plan stays a few tens of thousands of runs.
    const lengthScale = Math.min(4, Math.max(1, Math.sqrt(size / 2 ** 32)));
    let mixIndex = 0;
    this.plan.expand((r) => {
      if (!r.owner?.startsWith(MIX_OWNER)) return undefined;
      const p = this.profiles.get(r.owner.slice(MIX_OWNER.length))!;
      return generateMix(p, r.start, r.start + r.count, rng.fork(0x1000 + mixIndex++), where, FIELDS.kernel, lengthScale);
    });
  }
}

/**
 * The kernel image and the stub's metadata. The spans of its mapping that
 * are not the image hold ordinary memory of the guest (with balloon and
 * poisoned pages more likely than elsewhere, so that they occur).
 */
function paintKernel(plan: PlanBuilder, layout: KernelLayout, mixes: MixPaint, profile: MixProfile): void {
  plan.paint(layout.kbase, layout.imagePages, FIELDS.kernelImage);
  const around = neighbourMix(profile);
  for (const [start, count] of layout.freedSpans) mixes.paint(start, count, around);
  for (const m of layout.metaSpans()) {
    plan.paint(m.start, m.count, { cls: m.zero ? 'zero' : 'meta', ram: true, load: true, memmap: 'reserved', content: m.zero ? 'zero' : 'meta', owner: m.what });
  }
  plan.paint(layout.zeroPage, 1, { cls: 'zero', ram: true, load: true, memmap: 'reserved', content: 'zero', owner: 'empty_zero_page', variant: 'zero-page' });
}

/**
 * The crash kernel's reservation at the top of the kernel's range below 4 GiB, as reserve_crashkernel()
 * places it: 2 MiB-aligned, 1/16 of the guest up to 256 MiB (scaled down for small guests, left out when
 * it does not fit). It is System RAM but not in /proc/vmcore.
 */
function reserveCrashKernel(plan: PlanBuilder, layout: KernelLayout, kexec: readonly KexecSegmentPlan[], size: number, homeEnd: number): void {
  const usedTop = Math.max(layout.metaEnd, ...kexec.map((k) => (k.mem + k.memsz) / PAGE_SIZE));
  const ckPages = Math.min(256 * 256, Math.max(512, Math.floor(size / 16 / (2 * MiB)) * 512));
  const ckEnd = Math.floor(Math.min(homeEnd, 0x10_0000) / 512) * 512;
  const ckStart = ckEnd - ckPages;
  if (ckStart >= usedTop + 1024) plan.paint(ckStart, ckPages, FIELDS.crashkernel);
}

/**
 * Where _end falls in the kernel-text mapping and which spans the kernel
 * freed after boot, drawn per seed: the tail past _end is a few pages to
 * almost 2 MiB (none in one guest of ten); the init sections (1-15 % of the
 * image, after data and before bss) are always freed, a rodata gap in half
 * of the guests.
 */
function imagePlan(mapPages: number, rng: Rng): ImagePlan {
  const tail = rng.chance(0.1) ? 0 : rng.int(1, Math.min(511, mapPages - 256));
  const endPages = mapPages - tail;
  const body = endPages - IMAGE_FIXED_PAGES;
  const freed: Array<[number, number]> = [];
  if (rng.chance(0.5)) {
    const at = IMAGE_FIXED_PAGES + Math.floor(body * (0.2 + 0.1 * rng.float()));
    freed.push([at, rng.int(1, Math.max(1, Math.floor(body * 0.05)))]);
  }
  const initAt = IMAGE_FIXED_PAGES + Math.floor(body * (0.55 + 0.15 * rng.float()));
  freed.push([initAt, rng.int(2, Math.max(2, Math.floor(body * 0.15)))]);
  return { endPages, freed };
}

/**
 * The memory the kernel gave back from its image: the guest's own mix
 * (without 2 MiB-aligned folios, which such spans rarely hold), balloon
 * pages three times and poisoned pages ten times as likely as elsewhere.
 */
function neighbourMix(profile: MixProfile): MixProfile {
  const entries: MixEntry[] = profile.entries
    .filter((e) => !e.aligned)
    .map((e) => ({ ...e, max: Math.min(e.max, 64), share: e.fields.cls === 'offline' ? e.share * 3 : e.fields.cls === 'hwpoison' ? e.share * 10 : e.share }));
  if (!entries.some((e) => e.fields.cls === 'hwpoison')) entries.push({ fields: FIELDS.hwpoison, share: 0.005, min: 1, max: 1 });
  return { name: `${profile.name}-image-neighbours`, entries };
}

/** Split runs so that pfns without a struct page say 'none' and the others never do. */
function fixStructPagePresence(plan: PlanBuilder, layout: KernelLayout): void {
  const present: Array<[number, number]> = [];
  if (layout.model === 'flatmem') present.push([0, layout.maxPfn]);
  else {
    for (const s of layout.sections) {
      const a = s.nr * PAGES_PER_SECTION;
      const last = present[present.length - 1];
      if (last && last[1] === a) last[1] = a + PAGES_PER_SECTION;
      else present.push([a, a + PAGES_PER_SECTION]);
    }
  }
  // Pfns with a struct page whose run says 'none' become reserved (holes inside a section);
  // pfns without one must say 'none'. Only runs that need it are repainted.
  const gaps: Array<[number, number]> = [];
  let at = 0;
  for (const [a, b] of present) {
    if (a > at) gaps.push([at, a]);
    at = Math.max(at, b);
  }
  if (at < plan.maxPfn) gaps.push([at, plan.maxPfn]);
  const fixes: Array<[number, number, 'reserved' | 'none']> = [];
  const overlapOf = (list: Array<[number, number]>, s: number, e: number): Array<[number, number]> =>
    list.filter(([a, b]) => a < e && s < b).map(([a, b]) => [Math.max(a, s), Math.min(b, e)] as [number, number]);
  for (const r of plan.runs) {
    const e = r.start + r.count;
    if (r.memmap === 'none') for (const [a, b] of overlapOf(present, r.start, e)) fixes.push([a, b, 'reserved']);
    else {
      for (const [a, b] of overlapOf(gaps, r.start, e)) {
        if (r.load) throw new Error(`pfn range at 0x${a.toString(16)} is in the image but has no struct page`);
        fixes.push([a, b, 'none']);
      }
    }
  }
  for (const [a, b, m] of fixes) plan.paint(a, b - a, (old) => ({ ...old, memmap: m }));
}

/** PT_LOADs: maximal spans of load=true pfns, cut where one System RAM (or device) resource ends. */
function computeLoads(plan: Plan, ram: readonly RamRange[], devices: readonly DeviceRange[]): LoadSegment[] {
  const spans: LoadSegment[] = [];
  for (const r of plan.runs) {
    if (!r.load) continue;
    const last = spans[spans.length - 1];
    if (last && last.end === r.start) last.end = r.start + r.count;
    else spans.push({ start: r.start, end: r.start + r.count });
  }
  const cuts = [...new Set([...ram, ...devices].flatMap((r) => [r.start, r.end]))].sort((a, b) => a - b);
  const out: LoadSegment[] = [];
  for (const sp of spans) {
    let s = sp.start;
    for (const c of cuts) {
      if (c > s && c < sp.end) {
        out.push({ start: s, end: c });
        s = c;
      }
    }
    out.push({ start: s, end: sp.end });
  }
  return out;
}

function fillPages(g: Guest, pfn: number, count: number, dst: Uint8Array, off: number): void {
  g.plan.forEachRunIn(pfn, pfn + count, (r, s, e) => {
    const o = off + (s - pfn) * PAGE_SIZE;
    switch (r.content) {
      case 'data':
        g.content.fillRun(s, e - s, r.cls, dst, o);
        break;
      case 'meta':
        g.layout.fillMeta(s, e - s, dst, o, g.encoder.structPages);
        break;
      default:
        dst.fill(0, o, o + (e - s) * PAGE_SIZE);
    }
  });
}
