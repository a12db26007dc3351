/**
 * Scenarios: the physical layout of a guest and what is planted in it
 * (balloons, hot-added memory, devices, kexec segments). docs/scenarios.md
 * describes each with its sources.
 */
import { UsageError } from '../core/errors.js';
import type { EraDef } from './eras.js';
import type { DeviceRange, KernelLayout, MemoryModel, RamRange } from './layout.js';
import type { MixEntry, MixProfile } from './mix.js';
import { Rng } from './rng.js';
import { HUGE_PAGES, PAGES_PER_SECTION, PAGE_SIZE, type PlanBuilder, type RunFields } from './plan.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const P_1M = MiB / PAGE_SIZE;
const P_2M = (2 * MiB) / PAGE_SIZE;
const P_3G = (3 * GiB) / PAGE_SIZE;
const P_4G = (4 * GiB) / PAGE_SIZE;
const SECTION = PAGES_PER_SECTION;

export interface ScenarioContext {
  era: EraDef;
  /** Bytes of guest memory (boot RAM). */
  size: number;
  seed: number;
  model: MemoryModel;
  rng: Rng;
}

export interface KexecSegmentPlan {
  /** Physical address and size in bytes (page multiples). */
  mem: number;
  memsz: number;
  label: string;
}

export interface VirtioMemPlan {
  id: number;
  /** Bytes. */
  addr: number;
  size: number;
  blockSize: number;
}

/** What a scenario adds besides RAM: decided with the layout, applied to the plan. */
export interface ScenarioDraft {
  ram: RamRange[];
  devices: DeviceRange[];
  /** Hypervisor-side files this guest comes with. */
  sideFiles: Array<'xen-hvm' | 'xen-pv' | 'virtio-mem' | 'kexec'>;
  kexec: KexecSegmentPlan[];
  virtioMem: VirtioMemPlan[];
  /** Mix profile for RAM not painted otherwise. */
  profile: MixProfile;
  /** Paint fixed regions (after the layout is known, before the mix is generated). */
  populate(g: GuestDraftApi): void;
  /** Touch up the generated plan (e.g. hand some ballooned pages out). */
  finish?(g: GuestDraftApi): void;
}

export interface GuestDraftApi {
  ctx: ScenarioContext;
  layout: KernelLayout;
  plan: PlanBuilder;
  /** Lowest free pfn after the kernel's metadata in the boot range that holds it. */
  afterMeta: number;
  /** End of that boot range. */
  homeEnd: number;
  /** Paint [start, start+count) with a mix profile (generated later). */
  paintMix(start: number, count: number, profile: MixProfile): void;
  paint(start: number, count: number, fields: RunFields): void;
}

export interface ScenarioDef {
  name: string;
  description: string;
  /** Smallest guest size accepted (bytes). */
  minSize: number;
  /** Why the scenario cannot run in this era / memory model, or undefined. */
  unsupported(era: EraDef, model: MemoryModel): string | undefined;
  draft(ctx: ScenarioContext): Omit<ScenarioDraft, 'populate'> & { populate?: ScenarioDraft['populate'] };
}

// ---------------------------------------------------------------------------
// Run fields

export const FIELDS = {
  kernel: { cls: 'kernel', ram: true, load: true, memmap: 'plain', content: 'data' },
  kernelImage: { cls: 'kernel', ram: true, load: true, memmap: 'reserved', content: 'data', owner: 'kernel-image' },
  zero: { cls: 'zero', ram: true, load: true, memmap: 'plain', content: 'zero' },
  free: { cls: 'free', ram: true, load: true, memmap: 'free', content: 'data' },
  cache: { cls: 'cache', ram: true, load: true, memmap: 'cache', content: 'data' },
  cachePrivate: { cls: 'cache-private', ram: true, load: true, memmap: 'cache-private', content: 'data' },
  anon: { cls: 'anon', ram: true, load: true, memmap: 'anon', content: 'data' },
  thp: { cls: 'thp', ram: true, load: true, memmap: 'thp', content: 'data' },
  hugetlb: { cls: 'hugetlb', ram: true, load: true, memmap: 'hugetlb', content: 'data' },
  slab: { cls: 'slab', ram: true, load: true, memmap: 'slab', content: 'data' },
  slabAdversarial: { cls: 'slab', ram: true, load: true, memmap: 'slab', content: 'data', variant: 'adversarial' },
  pgtable: { cls: 'pgtable', ram: true, load: true, memmap: 'pgtable', content: 'data' },
  hwpoison: { cls: 'hwpoison', ram: true, load: true, memmap: 'hwpoison', content: 'data' },
  hole: { cls: 'hole', ram: false, load: false, memmap: 'none', content: 'none' },
  crashkernel: { cls: 'crashkernel', ram: true, load: false, memmap: 'reserved', content: 'none', owner: 'crashkernel' },
} as const satisfies Record<string, RunFields>;

/** A ballooned pfn: offline if the era's driver marks it, not backed, zero in the image. */
function ballooned(owner: string, marked: boolean): RunFields {
  return { cls: 'offline', ram: false, load: true, memmap: marked ? 'offline' : 'plain', content: 'zero', owner };
}

// ---------------------------------------------------------------------------
// Mix profiles

interface BaseMixOptions {
  era: EraDef;
  /** Scale of the ordinary classes (1 - share taken by planted entries). */
  scale?: number;
  extra?: MixEntry[];
  /** Include hwpoison pages and adversarial slab. */
  rich?: boolean;
}

/** The ordinary page mix of a guest that has been running a while. */
export function baseMix(o: BaseMixOptions): MixProfile {
  const s = o.scale ?? 1;
  const hugetlb = o.era.hugetlbConfig;
  const slabFlag = o.era.pg.slab !== undefined;
  const entries: MixEntry[] = [
    { fields: FIELDS.free, share: 0.3 * s, min: 1, max: 4096 },
    { fields: FIELDS.cache, share: 0.17 * s, min: 1, max: 512 },
    { fields: FIELDS.cachePrivate, share: 0.04 * s, min: 1, max: 64 },
    { fields: FIELDS.anon, share: 0.15 * s, min: 1, max: 1024 },
    { fields: FIELDS.thp, share: 0.08 * s, min: HUGE_PAGES, max: 4 * HUGE_PAGES, aligned: true },
    { fields: FIELDS.hugetlb, share: hugetlb ? 0.04 * s : 0, min: HUGE_PAGES, max: 2 * HUGE_PAGES, aligned: true },
    { fields: FIELDS.kernel, share: 0.09 * s, min: 1, max: 256 },
    { fields: FIELDS.slab, share: 0.05 * s, min: 1, max: 64 },
    { fields: FIELDS.zero, share: 0.03 * s, min: 1, max: 32 },
    { fields: FIELDS.pgtable, share: 0.01 * s, min: 1, max: 8 },
  ];
  if (o.rich) {
    entries.push({ fields: FIELDS.hwpoison, share: 0.0005 * s, min: 1, max: 1 });
    if (slabFlag) entries.push({ fields: FIELDS.slabAdversarial, share: 0.01 * s, min: 3, max: 48 });
  }
  entries.push(...(o.extra ?? []));
  return { name: o.rich ? 'rich' : 'base', entries };
}

/** Freshly onlined memory: mostly free, a little user memory and cache. */
function freshMix(): MixProfile {
  return {
    name: 'fresh',
    entries: [
      { fields: FIELDS.free, share: 0.75, min: 64, max: 8192 },
      { fields: FIELDS.anon, share: 0.12, min: 1, max: 512 },
      { fields: FIELDS.cache, share: 0.1, min: 1, max: 256 },
      { fields: FIELDS.kernel, share: 0.03, min: 1, max: 32 },
    ],
  };
}

// ---------------------------------------------------------------------------
// Layout helpers

const alignDown = (a: number, b: number): number => Math.floor(a / b) * b;
const alignUp = (a: number, b: number): number => Math.ceil(a / b) * b;

/**
 * PC-style boot RAM of `size` bytes: pfn 0 reserved, [1, 0x9f) low RAM,
 * the legacy VGA/BIOS hole to 1 MiB, RAM from 1 MiB, and above 3 GiB a
 * PCI hole [3 GiB, 4 GiB) with the rest of the RAM above 4 GiB.
 */
export function pcRam(size: number): RamRange[] {
  const pages = size / PAGE_SIZE;
  const out: RamRange[] = [{ start: 1, end: 0x9f, kind: 'boot' }];
  if (pages <= P_3G) {
    out.push({ start: P_1M, end: pages, kind: 'boot' });
  } else {
    out.push({ start: P_1M, end: P_3G, kind: 'boot' });
    out.push({ start: P_4G, end: P_4G + (pages - P_3G), kind: 'boot' });
  }
  return out;
}

function ramTop(ram: readonly RamRange[]): number {
  return Math.max(...ram.map((r) => r.end));
}

/** Where hot-plugged memory of `pages` goes: after RAM, section-aligned, never inside the PCI hole. */
function hotplugBase(ram: readonly RamRange[], pages: number, align: number): number {
  const at = alignUp(ramTop(ram), align);
  if (at < P_4G && at + pages > P_3G) return alignUp(P_4G, align);
  return at;
}

/** Which fraction of the guest's RAM lies below pfn (for position-dependent weights). */
export function ramPosition(ram: readonly RamRange[]): (pfn: number) => number {
  const total = ram.reduce((a, r) => a + (r.end - r.start), 0);
  return (pfn) => {
    let below = 0;
    for (const r of ram) {
      if (pfn >= r.end) below += r.end - r.start;
      else if (pfn > r.start) below += pfn - r.start;
    }
    return total ? below / total : 0;
  };
}

// ---------------------------------------------------------------------------
// Scenarios

const needs5x = (era: EraDef): string | undefined =>
  era.version < 500 ? `needs a kernel era of 5.x or later (this driver does not mark PageOffline in ${era.name})` : undefined;

const plain: ScenarioDef = {
  name: 'plain',
  description: 'no balloon: a mix of every class makedumpfile filters (THP, hugetlb, buddy blocks, cache, anon, hwpoison, adversarial slab)',
  minSize: 32 * MiB,
  unsupported: () => undefined,
  draft: (ctx) => ({
    ram: pcRam(ctx.size),
    devices: [],
    sideFiles: [],
    kexec: [],
    virtioMem: [],
    profile: baseMix({ era: ctx.era, rich: true }),
  }),
};

const virtioBalloon: ScenarioDef = {
  name: 'virtio-balloon',
  description: 'KVM guest with an inflated virtio-balloon (PageOffline, PG_balloon in 4.19) and free page reporting',
  minSize: 32 * MiB,
  unsupported: () => undefined,
  draft: (ctx) => {
    const era = ctx.era;
    const extra: MixEntry[] = [
      // The driver inflates in batches of up to 256 pfns (VIRTIO_BALLOON_ARRAY_PFNS_MAX).
      { fields: ballooned('virtio-balloon', era.marks.virtioBalloon), share: 0.25, min: 1, max: 256 },
    ];
    if (era.has.freePageReporting) {
      // Free page reporting hands pageblock-order free blocks to the host, which discards them.
      extra.push({
        fields: { cls: 'free', ram: false, load: true, memmap: 'free', content: 'zero', owner: 'page-reporting', variant: 'reported' },
        share: 0.06,
        min: HUGE_PAGES,
        max: 4 * HUGE_PAGES,
        aligned: true,
      });
    }
    return {
      ram: pcRam(ctx.size),
      devices: [],
      sideFiles: [],
      kexec: [],
      virtioMem: [],
      profile: baseMix({ era, scale: 0.7, extra }),
    };
  },
};

const vmwareBalloon: ScenarioDef = {
  name: 'vmware-balloon',
  description: 'VMware guest with vmw_balloon 2 MiB pages: offline runs of 512 frames, 512-aligned',
  minSize: 32 * MiB,
  unsupported: (era) => needs5x(era),
  draft: (ctx) => ({
    ram: pcRam(ctx.size),
    devices: [],
    sideFiles: [],
    kexec: [],
    virtioMem: [],
    profile: baseMix({
      era: ctx.era,
      scale: 0.75,
      extra: [{ fields: ballooned('vmw-balloon', ctx.era.marks.vmwBalloon), share: 0.25, min: HUGE_PAGES, max: 8 * HUGE_PAGES, aligned: true }],
    }),
  }),
};

const xenHvmBalloon: ScenarioDef = {
  name: 'xen-hvm-balloon',
  description: 'Xen PVonHVM guest: ballooned pfns PageOffline and HVMMEM_mmio_dm, grant-mapped balloon pages, a "Xen scratch" ZONE_DEVICE range, kexec segments',
  minSize: 32 * MiB,
  unsupported: () => undefined,
  draft: (ctx) => {
    const era = ctx.era;
    const ram = pcRam(ctx.size);
    const devices: DeviceRange[] = [];
    if (era.has.xenScratch && ctx.model === 'sparsemem') {
      // xen/unpopulated-alloc: fill_list() takes whole sections of unused iomem (allocate_resource
      // aligned to PAGES_PER_SECTION) and memremap_pages() them as MEMORY_DEVICE_GENERIC.
      const at = hotplugBase(ram, SECTION, SECTION);
      devices.push({ start: at, end: at + SECTION, owner: 'xen-scratch' });
    }
    const kexec: KexecSegmentPlan[] = [];
    return {
      ram,
      devices,
      sideFiles: ['xen-hvm', 'kexec'],
      kexec,
      virtioMem: [],
      profile: baseMix({
        era,
        scale: 0.75,
        extra: [
          {
            fields: ballooned('xen-balloon', era.marks.xenBalloon),
            share: 0.25,
            min: 1,
            max: 2048,
            // decrease_reservation() takes GFP_HIGHUSER pages: mostly from the top of memory.
            at: (w) => (w < 0.3 ? 0.2 : w < 0.6 ? 0.8 : 2.2),
          },
        ],
      }),
      populate: (g) => {
        // Scratch range: not RAM, not in any PT_LOAD; a few pfns grant-mapped (HVMMEM_ram_rw).
        for (const d of devices) {
          g.paint(d.start, d.end - d.start, { cls: 'device', ram: false, load: false, memmap: 'device', content: 'none', owner: d.owner });
          g.paint(d.start, 16, { cls: 'device', ram: true, load: false, memmap: 'device', content: 'none', owner: d.owner });
        }
        // A loaded kexec image (kexec -l): kernel, initrd, purgatory, boot parameters, in populated RAM.
        const pages = ctx.size / PAGE_SIZE;
        const kernel = Math.ceil(Math.min(Math.max(pages / 256, 64), 3072));
        const initrd = Math.ceil(Math.min(Math.max(pages / 128, 128), 12288));
        let at = alignUp(g.afterMeta, P_2M);
        const segs: Array<[string, number, number]> = [];
        segs.push(['kernel', at, kernel]);
        at = alignUp(at + kernel, P_2M);
        segs.push(['initrd', at, initrd]);
        at = alignUp(at + initrd, 1);
        segs.push(['purgatory', at, 4]);
        segs.push(['boot-params', at + 4, 1]);
        if (at + 5 > g.homeEnd) throw new UsageError(`the guest is too small for its layout: the kexec image needs RAM up to ${((at + 5) * PAGE_SIZE) / MiB} MiB`);
        for (const [label, s, n] of segs) {
          kexec.push({ mem: s * PAGE_SIZE, memsz: n * PAGE_SIZE, label });
          g.paint(s, n, { cls: 'kexec', ram: true, load: true, memmap: 'reserved', content: 'data', owner: `kexec:${label}` });
        }
      },
      finish: (g) => {
        // alloc_xenballooned_pages() hands a few ballooned pages to drivers (grant and foreign
        // mappings): PG_offline cleared (5.1+), grant-mapped, so HVMOP_get_mem_type says ram_rw.
        const spans = g.plan.spans((r) => r.cls === 'offline' && r.owner === 'xen-balloon' && !r.fault && r.count >= 4);
        const rng = ctx.rng.fork(0x96a);
        const pick = Math.min(4, spans.length);
        for (let k = 0; k < pick; k++) {
          const [s, n] = spans[Math.floor(((k + 0.5) * spans.length) / pick)]!;
          const len = Math.min(n - 1, rng.int(1, 8));
          g.paint(s + 1, len, { cls: 'grant', ram: true, load: true, memmap: 'plain', content: 'data', owner: 'xen-balloon' });
        }
      },
    };
  },
};

const xenPvBalloon: ScenarioDef = {
  name: 'xen-pv-balloon',
  description: 'Xen PV guest with a sparse physical map reaching above 128 GiB: ballooned pfns INVALID_P2M_ENTRY, holes identity-mapped',
  minSize: 64 * MiB,
  unsupported: () => undefined,
  draft: (ctx) => {
    const pages = ctx.size / PAGE_SIZE;
    const lowPages = Math.min(alignDown(Math.max(pages / 2, 48 * P_1M), P_2M), P_3G - P_1M);
    const rest = pages - lowPages;
    const midPages = alignDown(Math.floor(rest * 0.3), P_2M);
    const highPages = rest - midPages;
    const highBase = (136 * GiB) / PAGE_SIZE;
    const ram: RamRange[] = [
      { start: 1, end: 0x9f, kind: 'boot' },
      { start: P_1M, end: P_1M + lowPages, kind: 'boot' },
    ];
    if (midPages > 0) ram.push({ start: P_4G, end: P_4G + midPages, kind: 'boot' });
    if (highPages > 0) ram.push({ start: highBase, end: highBase + highPages, kind: 'boot' });
    const top = ram[ram.length - 1]!;
    // The "extra memory" beyond the domain's current allocation: ballooned from boot (balloon_add_region()).
    const extra = alignDown(Math.floor((top.end - top.start) / 4), P_2M);
    return {
      ram,
      devices: [],
      sideFiles: ['xen-pv'],
      kexec: [],
      virtioMem: [],
      profile: baseMix({
        era: ctx.era,
        scale: 0.9,
        extra: [{ fields: ballooned('xen-balloon', ctx.era.marks.xenBalloon), share: 0.1, min: 1, max: 1024 }],
      }),
      populate: (g) => {
        if (extra > 0) g.paint(top.end - extra, extra, ballooned('xen-balloon', ctx.era.marks.xenBalloon));
      },
    };
  },
};

const hvBalloon: ScenarioDef = {
  name: 'hv-balloon',
  description: 'Hyper-V guest: a hot-added region only partly onlined (never-onlined pages PageOffline) and inflated balloon pages',
  minSize: 32 * MiB,
  unsupported: (_era, model) => (model === 'flatmem' ? 'memory hot-add needs SPARSEMEM' : undefined),
  draft: (ctx) => {
    const era = ctx.era;
    const boot = pcRam(ctx.size);
    // hv_balloon hot-adds in HA_CHUNK (128 MiB) blocks; the host covers the second one only partly.
    const base = hotplugBase(boot, 2 * SECTION, SECTION);
    const ram: RamRange[] = [...boot, { start: base, end: base + SECTION, kind: 'hotplug' }, { start: base + SECTION, end: base + 2 * SECTION, kind: 'hotplug' }];
    const covered = alignDown(Math.floor(SECTION * 0.4), P_2M);
    const markNever = era.marks.hvBalloon || era.version >= 611;
    return {
      ram,
      devices: [],
      sideFiles: [],
      kexec: [],
      virtioMem: [],
      profile: baseMix({
        era,
        scale: 0.8,
        extra: [
          // alloc_balloon_pages(): 2 MiB units (split_page) when possible, single pages otherwise.
          { fields: ballooned('hv-balloon', era.marks.hvBalloon), share: 0.17, min: HUGE_PAGES, max: 4 * HUGE_PAGES, aligned: true },
          { fields: ballooned('hv-balloon', era.marks.hvBalloon), share: 0.03, min: 1, max: 16 },
        ],
      }),
      populate: (g) => {
        g.paintMix(base, SECTION + covered, freshMix());
        g.paint(base + SECTION + covered, SECTION - covered, {
          cls: 'never-onlined',
          ram: false,
          load: true,
          memmap: markNever ? 'offline' : 'reserved',
          content: 'zero',
          owner: 'hv-balloon',
        });
      },
    };
  },
};

const virtioMem: ScenarioDef = {
  name: 'virtio-mem',
  description: 'KVM guest with a virtio-mem device: unplugged subblocks fake-offline inside online blocks, fully unplugged blocks not added',
  minSize: 32 * MiB,
  unsupported: (era, model) =>
    !era.has.virtioMem ? 'virtio-mem needs a kernel era of 5.10 or later (merged in 5.8)' : model === 'flatmem' ? 'memory hot-add needs SPARSEMEM' : undefined,
  draft: (ctx) => {
    const boot = pcRam(ctx.size);
    const blocks = Math.max(3, Math.min(64, Math.round(ctx.size / (128 * MiB))));
    // QEMU puts device memory above 4 GiB, 1 GiB-aligned.
    const base = Math.max(P_4G, alignUp(ramTop(boot), GiB / PAGE_SIZE));
    const rng = ctx.rng.fork(0x7e);
    const sbPerBlock = SECTION / P_2M;
    /** Per block: plugged subblock bitmap (true = plugged); all-false = not added. */
    const states: boolean[][] = [];
    for (let b = 0; b < blocks; b++) {
      let kind: 'full' | 'partial' | 'none';
      if (b === 0) kind = 'partial';
      else if (b === 1) kind = 'none';
      else if (b === blocks - 1) kind = 'partial';
      else if (b === 2) kind = 'full';
      else kind = rng.chance(0.4) ? 'full' : rng.chance(0.66) ? 'partial' : 'none';
      const sbs: boolean[] = [];
      for (let i = 0; i < sbPerBlock; i++) sbs.push(kind === 'full' ? true : kind === 'none' ? false : rng.chance(0.6));
      if (kind === 'partial') {
        sbs[0] = true;
        sbs[sbPerBlock - 1] = false;
      }
      states.push(sbs);
    }
    const ram: RamRange[] = [...boot];
    states.forEach((sbs, b) => {
      const start = base + b * SECTION;
      if (sbs.some((x) => x)) ram.push({ start, end: start + SECTION, kind: 'hotplug' });
    });
    // The plugged blocks the device reports are derived from the plan (side-files.ts).
    const dev: VirtioMemPlan = { id: 0, addr: base * PAGE_SIZE, size: blocks * SECTION * PAGE_SIZE, blockSize: 2 * MiB };
    const markOffline = ctx.era.marks.virtioBalloon; // virtio_mem_set_fake_offline() always uses PageOffline
    return {
      ram,
      devices: [],
      sideFiles: ['virtio-mem'],
      kexec: [],
      virtioMem: [dev],
      profile: baseMix({ era: ctx.era }),
      populate: (g) => {
        states.forEach((sbs, b) => {
          const start = base + b * SECTION;
          const added = sbs.some((x) => x);
          if (!added) {
            g.paint(start, SECTION, { cls: 'unplugged', ram: false, load: false, memmap: 'none', content: 'none', owner: 'virtio-mem:0' });
            return;
          }
          sbs.forEach((on, i) => {
            const s = start + i * P_2M;
            if (on) g.paintMix(s, P_2M, freshMix());
            else
              g.paint(s, P_2M, {
                cls: 'unplugged',
                ram: false,
                load: true,
                memmap: markOffline ? 'offline' : 'plain',
                content: 'zero',
                owner: 'virtio-mem:0',
              });
          });
        });
      },
    };
  },
};

export const SCENARIO_DEFS: readonly ScenarioDef[] = [xenHvmBalloon, xenPvBalloon, virtioBalloon, hvBalloon, virtioMem, vmwareBalloon, plain];

export function scenarioByName(name: string): ScenarioDef | undefined {
  return SCENARIO_DEFS.find((s) => s.name === name);
}
