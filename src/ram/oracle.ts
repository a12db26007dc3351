/**
 * The RAM oracle: a model of the kernel's vmcore pfn_is_ram callbacks, i.e.
 * which pfns the hypervisor really backs. Models answer for runs of pfns;
 * every question a filter asks is counted, because in the kdump kernel each
 * one is a hypercall or a device request.
 */

export interface RamSpan {
  /** RAM in the hypervisor's view (true also when the model cannot tell). */
  ram: boolean;
  /** How many pfns from the asked one share this answer (>= 1). */
  count: number;
}

export interface RamOracle {
  /** Short name for reports, e.g. 'xen-hvm:guest.memtypes'. */
  readonly name: string;
  /**
   * The answer for `pfn` and how far it holds, never beyond `limit`
   * (exclusive). Must be deterministic: the same question gets the same answer.
   */
  span(pfn: number, limit: number): RamSpan;
  /**
   * How many kernel-side calls answering [start, end) costs: one per pfn for
   * a per-pfn hypercall (Xen HVMOP_get_mem_type), one per device block for
   * virtio-mem, 0 for static knowledge. Defaults to one per pfn.
   */
  callsFor?(start: number, end: number): number;
}

/** Every pfn is RAM: the behaviour without any registered callback. */
export const ALL_RAM: RamOracle = {
  name: 'none',
  span: (pfn, limit) => ({ ram: true, count: Math.max(1, limit - pfn) }),
  callsFor: () => 0,
};
