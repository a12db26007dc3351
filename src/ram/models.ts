/**
 * RAM oracle models: the hypervisor's view of which pfns are backed, each
 * answering for runs of pfns by binary search over sorted run tables.
 *
 * Semantics follow the kernel's callbacks:
 * - Xen HVM (arch/x86/xen/mmu_hvm.c): HVMOP_get_mem_type per pfn;
 *   HVMMEM_mmio_dm means not RAM; a failed hypercall counts as RAM.
 * - virtio-mem kdump mode (drivers/virtio/virtio_mem.c): only pfns inside
 *   the device range are judged; plugged means RAM, unplugged or a device
 *   error means not RAM. One VIRTIO_MEM_REQ_STATE request per device block.
 * - Xen PV P2M: INVALID_P2M_ENTRY means the pfn has no machine frame.
 * - ranges: a list of backed ranges; everything else is not RAM.
 */
import { lastAtOrBelow } from '../core/intervals.js';
import type { RamOracle, RamSpan } from './oracle.js';

/** A sorted, disjoint table of pfn runs with a small value per run. */
export class RunTable {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly values: Uint8Array;

  constructor(runs: ReadonlyArray<{ start: number; end: number; value: number }>) {
    this.starts = Float64Array.from(runs, (r) => r.start);
    this.ends = Float64Array.from(runs, (r) => r.end);
    this.values = Uint8Array.from(runs, (r) => r.value);
  }

  get length(): number {
    return this.starts.length;
  }

  /** The value at pfn (or `outside`) and where it stops holding, capped at limit. */
  lookup(pfn: number, limit: number, outside: number): { value: number; end: number } {
    const i = lastAtOrBelow(this.starts, pfn);
    if (i >= 0 && pfn < this.ends[i]!) return { value: this.values[i]!, end: Math.min(limit, this.ends[i]!) };
    const next = i + 1 < this.starts.length ? this.starts[i + 1]! : Number.POSITIVE_INFINITY;
    return { value: outside, end: Math.min(limit, next) };
  }
}

function span(ram: boolean, pfn: number, end: number): RamSpan {
  return { ram, count: Math.max(1, end - pfn) };
}

export type XenHvmType = 'ram_rw' | 'ram_ro' | 'mmio_dm' | 'error';
const HVM_VALUE: Record<XenHvmType, number> = { ram_rw: 0, ram_ro: 1, mmio_dm: 2, error: 3 };

export class XenHvmModel implements RamOracle {
  readonly kind = 'xen-hvm';
  private readonly table: RunTable;
  constructor(
    readonly name: string,
    runs: ReadonlyArray<{ start: number; end: number; type: XenHvmType }>,
  ) {
    this.table = new RunTable(runs.map((r) => ({ start: r.start, end: r.end, value: HVM_VALUE[r.type] })));
  }
  /**
   * Pfns the table does not list answer as RAM here; readers of the
   * memory-type file (chain.ts) fill its gaps with mmio_dm first, as the
   * format says (Xen answers mmio_dm for pfns without RAM).
   */
  span(pfn: number, limit: number): RamSpan {
    const { value, end } = this.table.lookup(pfn, limit, HVM_VALUE.ram_rw);
    return span(value !== HVM_VALUE.mmio_dm, pfn, end);
  }
  callsFor(start: number, end: number): number {
    return end - start;
  }
}

export type P2mKind = 'valid' | 'invalid' | 'identity';
const P2M_VALUE: Record<P2mKind, number> = { valid: 0, invalid: 1, identity: 2 };

export class XenPvModel implements RamOracle {
  readonly kind = 'xen-pv';
  private readonly table: RunTable;
  constructor(
    readonly name: string,
    runs: ReadonlyArray<{ start: number; end: number; kind: P2mKind }>,
  ) {
    this.table = new RunTable(runs.map((r) => ({ start: r.start, end: r.end, value: P2M_VALUE[r.kind] })));
  }
  /** Beyond the P2M (no entry at all) a pfn has no frame either. */
  span(pfn: number, limit: number): RamSpan {
    const { value, end } = this.table.lookup(pfn, limit, P2M_VALUE.invalid);
    return span(value !== P2M_VALUE.invalid, pfn, end);
  }
  /** The P2M is guest memory: reading it costs no hypercall. */
  callsFor(): number {
    return 0;
  }
}

export interface VirtioMemDevice {
  /** Device range in pfns. */
  start: number;
  end: number;
  /** Device block size in pfns (the unit of plug/unplug and of state requests). */
  blockPfns: number;
  /** Plugged pfn runs inside the device range. */
  plugged: ReadonlyArray<{ start: number; end: number }>;
  /** Runs whose state request fails (treated as not RAM). */
  errors?: ReadonlyArray<{ start: number; end: number }> | undefined;
}

const VM_OUTSIDE = 0;
const VM_PLUGGED = 1;
const VM_UNPLUGGED = 2;
const VM_ERROR = 3;

export class VirtioMemModel implements RamOracle {
  readonly kind = 'virtio-mem';
  private readonly table: RunTable;
  private readonly devices: VirtioMemDevice[];
  constructor(
    readonly name: string,
    devices: readonly VirtioMemDevice[],
  ) {
    this.devices = [...devices].sort((a, b) => a.start - b.start);
    const runs: Array<{ start: number; end: number; value: number }> = [];
    for (const d of this.devices) {
      const marks = new Map<number, number>();
      // Paint: unplugged everywhere, then plugged, then errors.
      const cuts = new Set<number>([d.start, d.end]);
      for (const r of [...d.plugged, ...(d.errors ?? [])]) {
        cuts.add(Math.max(d.start, r.start));
        cuts.add(Math.min(d.end, r.end));
      }
      const points = [...cuts].filter((x) => x >= d.start && x <= d.end).sort((a, b) => a - b);
      for (let i = 0; i + 1 < points.length; i++) {
        const a = points[i]!;
        const inside = (list: ReadonlyArray<{ start: number; end: number }> | undefined): boolean => !!list?.some((r) => r.start <= a && a < r.end);
        marks.set(a, inside(d.errors) ? VM_ERROR : inside(d.plugged) ? VM_PLUGGED : VM_UNPLUGGED);
      }
      for (let i = 0; i + 1 < points.length; i++) {
        const v = marks.get(points[i]!)!;
        const last = runs[runs.length - 1];
        if (last && last.end === points[i] && last.value === v) last.end = points[i + 1]!;
        else runs.push({ start: points[i]!, end: points[i + 1]!, value: v });
      }
    }
    this.table = new RunTable(runs);
  }
  span(pfn: number, limit: number): RamSpan {
    const { value, end } = this.table.lookup(pfn, limit, VM_OUTSIDE);
    return span(value === VM_OUTSIDE || value === VM_PLUGGED, pfn, end);
  }
  /** Whether pfn lies inside a device range (the callback only judges those). */
  inDevice(pfn: number): boolean {
    return this.table.lookup(pfn, pfn + 1, VM_OUTSIDE).value !== VM_OUTSIDE;
  }
  /** One state request per device block touched (the driver caches the last block). */
  callsFor(start: number, end: number): number {
    let calls = 0;
    for (const d of this.devices) {
      const a = Math.max(start, d.start);
      const b = Math.min(end, d.end);
      if (a >= b) continue;
      calls += Math.floor((b - 1 - d.start) / d.blockPfns) - Math.floor((a - d.start) / d.blockPfns) + 1;
    }
    return calls;
  }
}

export class RangesModel implements RamOracle {
  readonly kind = 'ranges';
  private readonly table: RunTable;
  constructor(
    readonly name: string,
    backed: ReadonlyArray<{ start: number; end: number }>,
  ) {
    this.table = new RunTable(backed.map((r) => ({ start: r.start, end: r.end, value: 1 })));
  }
  span(pfn: number, limit: number): RamSpan {
    const { value, end } = this.table.lookup(pfn, limit, 0);
    return span(value === 1, pfn, end);
  }
  callsFor(start: number, end: number): number {
    return end - start;
  }
}

/**
 * The kernel's callback chain.
 * - 'list' (Linux 5.16+, vmcore_cb): any callback saying "not RAM" wins.
 * - 'legacy' (up to 5.15, register_oldmem_pfn_is_ram): one hook only.
 */
export class ChainOracle implements RamOracle {
  readonly name: string;
  constructor(
    readonly models: readonly RamOracle[],
    readonly api: 'list' | 'legacy',
  ) {
    this.name = models.map((m) => m.name).join(' + ');
  }
  span(pfn: number, limit: number): RamSpan {
    // "Not RAM" holds while any model says so; "RAM" while all do.
    let ramEnd = limit;
    let notRamEnd = -1;
    for (const m of this.models) {
      const s = m.span(pfn, limit);
      const e = pfn + Math.max(1, Math.min(s.count, limit - pfn));
      if (s.ram) ramEnd = Math.min(ramEnd, e);
      else notRamEnd = Math.max(notRamEnd, e);
    }
    return notRamEnd >= 0 ? { ram: false, count: notRamEnd - pfn } : { ram: true, count: Math.max(1, ramEnd - pfn) };
  }
  callsFor(start: number, end: number): number {
    let n = 0;
    for (const m of this.models) n += m.callsFor ? m.callsFor(start, end) : end - start;
    return n;
  }
}

/** The first model of a kind in an oracle (chained or not). */
export function findModel<K extends 'xen-hvm' | 'xen-pv' | 'virtio-mem' | 'ranges'>(
  oracle: RamOracle,
  kind: K,
): (K extends 'virtio-mem' ? VirtioMemModel : RamOracle) | undefined {
  const all = oracle instanceof ChainOracle ? oracle.models : [oracle];
  return all.find((m) => (m as { kind?: string }).kind === kind) as (K extends 'virtio-mem' ? VirtioMemModel : RamOracle) | undefined;
}
