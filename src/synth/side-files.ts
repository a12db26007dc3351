/**
 * The files written next to a synthetic image: the truth manifest, the
 * /proc/kpageflags table, and the hypervisor-side inputs of the RAM-oracle
 * models (generic backed ranges always; Xen HVM memory types, Xen PV P2M,
 * virtio-mem device state and the kexec segment list where the scenario
 * has them). All are derived from the plan.
 */
import { formatKexecSegments, type KexecSegment } from '../formats/kexec-segments.js';
import { KpageflagsTableWriter } from '../formats/kpageflags/table.js';
import type { PositionalSink } from '../io/sink.js';
import {
  formatBackedRanges,
  formatVirtioMem,
  formatXenHvmMemTypes,
  formatXenPvP2m,
  type BackedRanges,
  type P2mEntry,
  type ValueRun,
  type VirtioMemState,
  type XenHvmMemTypes,
  type XenPvP2m,
} from '../ram/files.js';
import type { Guest } from './guest.js';
import { PAGE_SIZE } from './plan.js';
import { fmix32 } from './rng.js';
import { writeTruth, type TruthHeader } from './truth.js';

const KPF_WINDOW = 65536;

export function truthHeader(g: Guest): Omit<TruthHeader, 'runs'> {
  return {
    scenario: g.scenario,
    kernel: g.era.name,
    osrelease: g.era.osrelease,
    seed: g.seed,
    size: g.size,
    memoryModel: g.model,
    physBase: g.physBase,
    pageSize: PAGE_SIZE,
    faults: g.faults,
    maxPfn: g.maxPfn,
    kernelMaxPfn: g.kernelMaxPfn,
    loads: g.loads.map((l) => ({ start: l.start, end: l.end })),
    textLoad: g.textLoad ? { start: g.textLoad.start, end: g.textLoad.end } : undefined,
    printk: g.printk.truth,
  };
}

export async function writeGuestTruth(g: Guest, sink: PositionalSink): Promise<void> {
  await writeTruth(sink, truthHeader(g), g.plan.runs);
}

/** The kpageflags table: one word per pfn below maxPfn (round_up(max_pfn, PAGES_PER_SECTION) with SPARSEMEM). */
export async function writeGuestKpageflags(g: Guest, w: KpageflagsTableWriter): Promise<void> {
  const lo = new Uint32Array(KPF_WINDOW);
  const hi = new Uint32Array(KPF_WINDOW);
  for (let p = 0; p < g.maxPfn; p += KPF_WINDOW) {
    const n = Math.min(KPF_WINDOW, g.maxPfn - p);
    g.encoder.kpageflags(p, n, lo, hi, 0);
    await w.write(p, n, lo, hi, 0);
  }
}

function describe(g: Guest): string {
  return `synthetic guest: scenario ${g.scenario}, kernel ${g.era.name}, seed ${g.seed}${g.faults.length ? `, faults ${g.faults.join(',')}` : ''}`;
}

/** Merge the plan's runs with ram = true. */
export function backedRanges(g: Guest): BackedRanges {
  const runs: Array<{ start: number; count: number }> = [];
  for (const r of g.plan.runs) {
    if (!r.ram) continue;
    const last = runs[runs.length - 1];
    if (last && last.start + last.count === r.start) last.count += r.count;
    else runs.push({ start: r.start, count: r.count });
  }
  return { runs };
}

/** Xen HVM: backed pfns answer ram_rw (grant-mapped ones too: p2m_is_grant → HVMMEM_ram_rw), the rest mmio_dm. */
export function xenHvmMemTypes(g: Guest): XenHvmMemTypes {
  return { runs: backedRanges(g).runs.map((r) => ({ start: r.start, count: r.count, value: 'ram_rw' as const })) };
}

/**
 * Xen PV: backed pfns map to machine frames (scattered in 2048-frame
 * extents, each pfn to its own mfn), ballooned pfns are INVALID_P2M_ENTRY,
 * holes are identity frames.
 */
export function xenPvP2m(g: Guest): XenPvP2m {
  const p2mSize = Math.ceil(g.kernelMaxPfn / 512) * 512;
  const EXTENT = 2048;
  const extents = Math.ceil(p2mSize / EXTENT);
  let bits = 4;
  while (2 ** bits < extents * 2) bits++;
  const mod = 2 ** bits;
  const mult = (fmix32(g.seed ^ 0x9e37) | 1) >>> 0;
  const add = fmix32(g.seed ^ 0x79b9);
  const perm = (k: number): number => Number((BigInt(k) * BigInt(mult) + BigInt(add)) % BigInt(mod));
  const MFN_BASE = 0x10000;
  const runs: ValueRun<P2mEntry>[] = [];
  const push = (start: number, count: number, value: P2mEntry): void => {
    const last = runs[runs.length - 1];
    if (last && last.start + last.count === start) {
      const lv = last.value;
      if (lv.kind === value.kind && (lv.kind !== 'mfn' || (value.kind === 'mfn' && lv.mfn + last.count === value.mfn))) {
        last.count += count;
        return;
      }
    }
    runs.push({ start, count, value });
  };
  for (const r of g.plan.runs) {
    if (r.start >= p2mSize) break;
    const end = Math.min(p2mSize, r.start + r.count);
    if (r.ram) {
      let p = r.start;
      while (p < end) {
        const ext = Math.floor(p / EXTENT);
        const e = Math.min(end, (ext + 1) * EXTENT);
        push(p, e - p, { kind: 'mfn', mfn: MFN_BASE + perm(ext) * EXTENT + (p - ext * EXTENT) });
        p = e;
      }
    } else if (r.cls === 'hole') {
      push(r.start, end - r.start, { kind: 'identity' });
    } else {
      push(r.start, end - r.start, { kind: 'invalid' });
    }
  }
  return { p2mSize, runs };
}

/** virtio-mem: the device regions, and as plugged the device blocks the plan backs. */
export function virtioMemState(g: Guest): VirtioMemState {
  return {
    devices: g.virtioMem.map((d) => {
      const plugged: Array<{ addr: number; size: number }> = [];
      for (let a = d.addr; a < d.addr + d.size; a += d.blockSize) {
        const pfn = a / PAGE_SIZE;
        const on = pfn < g.plan.maxPfn && g.plan.runAt(pfn).ram;
        if (!on) continue;
        const last = plugged[plugged.length - 1];
        if (last && last.addr + last.size === a) last.size += d.blockSize;
        else plugged.push({ addr: a, size: d.blockSize });
      }
      return { id: d.id, addr: d.addr, size: d.size, blockSize: d.blockSize, plugged };
    }),
  };
}

export function kexecSegments(g: Guest): KexecSegment[] {
  return g.kexec.map((k) => ({ mem: k.mem, memsz: k.memsz, label: k.label }));
}

/** Suffixes of the text side files this guest gets. */
export function sideFileSuffixes(g: Guest): string[] {
  const out = ['.backed'];
  if (g.sideFiles.includes('xen-hvm')) out.push('.memtypes');
  if (g.sideFiles.includes('xen-pv')) out.push('.p2m');
  if (g.sideFiles.includes('virtio-mem')) out.push('.virtio-mem');
  if (g.sideFiles.includes('kexec')) out.push('.kexec');
  return out;
}

/** Text side files of the guest: suffix → content (in the order of sideFileSuffixes). */
export function textSideFiles(g: Guest): Array<{ suffix: string; text: string }> {
  const c = describe(g);
  const out: Array<{ suffix: string; text: string }> = [{ suffix: '.backed', text: formatBackedRanges(backedRanges(g), c) }];
  if (g.sideFiles.includes('xen-hvm')) out.push({ suffix: '.memtypes', text: formatXenHvmMemTypes(xenHvmMemTypes(g), c) });
  if (g.sideFiles.includes('xen-pv')) out.push({ suffix: '.p2m', text: formatXenPvP2m(xenPvP2m(g), c) });
  if (g.sideFiles.includes('virtio-mem')) out.push({ suffix: '.virtio-mem', text: formatVirtioMem(virtioMemState(g), c) });
  if (g.sideFiles.includes('kexec')) out.push({ suffix: '.kexec', text: formatKexecSegments(kexecSegments(g), c) });
  return out;
}
