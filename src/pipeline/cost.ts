/**
 * The cost of reading a crashed guest's memory, per strategy. In the kdump
 * kernel every page read from /proc/vmcore may cost a pfn_is_ram callback
 * (a hypercall on Xen HVM: HVMOP_get_mem_type; a device request on
 * virtio-mem), and reading a page the hypervisor does not back may make it
 * fabricate one (Xen: qemu-dm answering 8-byte reads, 512 per page, at
 * 100 % dom0 load; Hyper-V: a crash). PG_offline lets a filter skip such
 * pages before asking anything.
 *
 * Defaults are rough orders of magnitude, stated so they can be replaced
 * with measured values (--cost):
 *   call       2 µs     one callback answer (a hypercall round trip)
 *   read       1 GiB/s  copying backed pages out of /proc/vmcore
 *   fabricate  10 ms    one page the hypervisor must make up (qemu-dm)
 */

export interface CostParams {
  /** Seconds per callback answer. */
  callSeconds: number;
  /** Bytes per second for reading backed pages. */
  readBytesPerSecond: number;
  /** Seconds per page the hypervisor fabricates. */
  fabricateSeconds: number;
}

export const DEFAULT_COSTS: CostParams = {
  callSeconds: 2e-6,
  readBytesPerSecond: 1024 ** 3,
  fabricateSeconds: 10e-3,
};

export interface StrategyCost {
  name: string;
  describe: string;
  /** pfn_is_ram answers asked for (hypercalls / device requests). */
  calls: number;
  pagesRead: number;
  bytesRead: number;
  /** Pages read that the hypervisor does not back (fabricated or zero-filled). */
  unbackedRead: number;
  seconds: number;
}

export interface CostInputs {
  /** RAM pages with data. */
  ramPages: number;
  /** Of them, not RAM per the oracle (0 without one). */
  notRam: number;
  /** Callback answers for all RAM pages (per-pfn, or per device block). */
  ramCalls: number;
  /** Pages a flag-based filter keeps at the cost level. */
  flagKept: number;
  flagKeptNotRam: number;
  flagKeptCalls: number;
  hasOracle: boolean;
  pageSize: number;
}

export function costStrategies(p: CostParams, x: CostInputs): StrategyCost[] {
  const mk = (name: string, describe: string, calls: number, pagesRead: number, unbackedRead: number): StrategyCost => ({
    name,
    describe,
    calls,
    pagesRead,
    bytesRead: pagesRead * x.pageSize,
    unbackedRead,
    seconds: calls * p.callSeconds + (pagesRead * x.pageSize) / p.readBytesPerSecond + unbackedRead * p.fabricateSeconds,
  });
  const out = [
    mk('plain copy', 'cp /proc/vmcore without a callback: every RAM page read, unbacked ones fabricated', 0, x.ramPages, x.notRam),
    mk('plain copy + callback', 'cp /proc/vmcore with pfn_is_ram registered: one answer per RAM page, unbacked pages zero-filled', x.ramCalls, x.ramPages - x.notRam, 0),
    mk('flag filter', 'makedumpfile-style filter without a callback: kept pages read, unbacked ones fabricated', 0, x.flagKept, x.flagKeptNotRam),
  ];
  if (x.hasOracle) {
    out.push(mk('oracle only', 'ask about every RAM page, read only the backed ones', x.ramCalls, x.ramPages - x.notRam, 0));
    out.push(
      mk('flags + oracle', 'dumpsieve: skip flagged pages without asking, ask about the rest, read only backed ones', x.flagKeptCalls, x.flagKept - x.flagKeptNotRam, 0),
    );
  }
  return out;
}
