/**
 * Fault knobs: deliberate inconsistencies a validator must find, each
 * recorded in the truth manifest (`fault=NAME` on the runs it touches).
 */
import type { EraDef } from './eras.js';
import type { MemoryModel } from './layout.js';
import { HUGE_PAGES, type PlanBuilder, type PlanRun, type RunFields } from './plan.js';
import type { Rng } from './rng.js';

export interface FaultApi {
  era: EraDef;
  scenario: string;
  plan: PlanBuilder;
  rng: Rng;
}

export interface FaultDef {
  name: string;
  description: string;
  /** Scenarios that can host it. */
  hosts: readonly string[];
  /** Why it cannot be planted in this era / model, or undefined. */
  unsupported?(era: EraDef, model: MemoryModel): string | undefined;
  /** Plant it; false when the guest has nothing it could act on. */
  apply(f: FaultApi): boolean;
}

const BALLOONS = ['xen-hvm-balloon', 'xen-pv-balloon', 'virtio-balloon', 'hv-balloon', 'virtio-mem', 'vmware-balloon'];
const ALL = [...BALLOONS, 'plain'];
const OFFLINE_CLASSES = new Set(['offline', 'unplugged', 'never-onlined']);

/** Balloons whose unit is a 2 MiB page: keep fault pieces 512-aligned. */
function unitOf(r: PlanRun): number {
  return r.owner === 'vmw-balloon' || r.owner === 'virtio-mem:0' || r.owner === 'hv-balloon' ? HUGE_PAGES : 1;
}

/**
 * Paint pieces of up to three candidate runs (spread over the guest) with
 * `patch`, about `share` of the candidates' pages in all (at least one page
 * or unit each).
 */
function plantPieces(f: FaultApi, pred: (r: PlanRun) => boolean, patch: (old: PlanRun) => RunFields, share = 1 / 8): boolean {
  const cands = f.plan.runs.filter((r) => pred(r) && !r.fault && r.count >= unitOf(r) && r.start % unitOf(r) === 0);
  if (cands.length === 0) return false;
  const total = cands.reduce((a, r) => a + r.count, 0);
  const k = Math.min(3, cands.length);
  const want = Math.max(1, Math.min(2048, Math.floor((total * share) / k)));
  const chosen: PlanRun[] = [];
  for (let i = 0; i < k; i++) chosen.push(cands[Math.floor(((i + 0.5) * cands.length) / k)]!);
  for (const r of chosen) {
    const unit = unitOf(r);
    const len = Math.max(unit, Math.min(r.count, Math.floor(want / unit) * unit));
    f.plan.paint(r.start, len, patch);
  }
  return true;
}

export const FAULT_DEFS: readonly FaultDef[] = [
  {
    name: 'unflagged-balloon',
    description: 'ballooned, unbacked pfns whose struct page is not marked PageOffline',
    hosts: BALLOONS,
    apply: (f) =>
      plantPieces(
        f,
        (r) => OFFLINE_CLASSES.has(r.cls) && r.memmap === 'offline' && !r.ram && r.load,
        (r) => ({ ...r, memmap: 'plain', fault: 'unflagged-balloon' }),
      ),
  },
  {
    name: 'backed-offline',
    description: 'PageOffline pages that the hypervisor still backs (with stale data)',
    hosts: BALLOONS,
    apply: (f) =>
      plantPieces(
        f,
        (r) => OFFLINE_CLASSES.has(r.cls) && r.memmap === 'offline' && !r.ram && r.load,
        (r) => ({ ...r, ram: true, content: 'data', fault: 'backed-offline' }),
      ),
  },
  {
    name: 'kexec-over-balloon',
    description: 'a kexec segment whose destination covers ballooned pfns',
    hosts: ['xen-hvm-balloon'],
    apply: (f) => {
      const seg = f.plan.runs.find((r) => r.owner === 'kexec:initrd');
      if (!seg || seg.count < 4) return false;
      const n = Math.max(1, Math.floor(seg.count / 4));
      const marked = f.era.marks.xenBalloon;
      f.plan.paint(seg.start + Math.floor(seg.count / 2), n, {
        cls: 'offline',
        ram: false,
        load: true,
        memmap: marked ? 'offline' : 'plain',
        content: 'zero',
        owner: 'xen-balloon',
        fault: 'kexec-over-balloon',
      });
      return true;
    },
  },
  {
    name: 'kpageflags-mismatch',
    description: '/proc/kpageflags disagreeing with mem_map: KPF_OFFLINE missing on offline pages, KPF_BUDDY missing on free pages',
    hosts: ALL,
    apply: (f) => {
      const a = plantPieces(
        f,
        (r) => r.memmap === 'offline' && r.load,
        (r) => ({ ...r, kpf: 'clear-offline', fault: 'kpageflags-mismatch' }),
      );
      const b = plantPieces(
        f,
        (r) => r.memmap === 'free' && r.load,
        (r) => ({ ...r, kpf: 'clear-buddy', fault: 'kpageflags-mismatch' }),
        1 / 32,
      );
      return a || b;
    },
  },
  {
    name: 'scratch-in-ptload',
    description: 'the Xen scratch (ZONE_DEVICE) range inside a PT_LOAD of the image',
    hosts: ['xen-hvm-balloon'],
    unsupported: (era, model) =>
      !era.has.xenScratch ? `there is no Xen scratch range in ${era.name} (unpopulated-alloc came in 5.9)` : model === 'flatmem' ? 'ZONE_DEVICE needs SPARSEMEM' : undefined,
    apply: (f) => {
      const runs = f.plan.runs.filter((r) => r.owner === 'xen-scratch');
      if (runs.length === 0) return false;
      for (const r of runs) {
        f.plan.paint(r.start, r.count, (old) => ({ ...old, load: true, content: old.ram ? 'data' : 'zero', fault: 'scratch-in-ptload' }));
      }
      return true;
    },
  },
  {
    name: 'stale-unbacked',
    description: 'pfns the hypervisor does not back that still hold non-zero data in the image',
    hosts: BALLOONS,
    apply: (f) =>
      plantPieces(
        f,
        (r) => OFFLINE_CLASSES.has(r.cls) && !r.ram && r.load && r.content === 'zero',
        (r) => ({ ...r, content: 'data', fault: 'stale-unbacked' }),
      ),
  },
  {
    name: 'type-overlap',
    description: 'a page_type with two types at once (offline and buddy bits both cleared), impossible since 6.12',
    hosts: ALL,
    unsupported: (era) => (era.encoding === 'pgty' ? `since 6.12 a page has exactly one type (${era.name})` : undefined),
    apply: (f) =>
      plantPieces(
        f,
        (r) => r.memmap === 'offline' && r.load,
        (r) => ({ ...r, memmap: 'type-overlap', fault: 'type-overlap' }),
      ) ||
      plantPieces(
        f,
        (r) => r.memmap === 'free' && r.load && r.variant === undefined,
        (r) => ({ ...r, memmap: 'type-overlap', fault: 'type-overlap' }),
        1 / 32,
      ),
  },
];

export function faultByName(name: string): FaultDef | undefined {
  return FAULT_DEFS.find((f) => f.name === name);
}
