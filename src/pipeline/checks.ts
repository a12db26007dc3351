/** The validation checks: stable ids, severities, and why each matters. */
export type Severity = 'error' | 'warning' | 'info';

export type CheckId =
  | 'offline-backed'
  | 'unbacked-unflagged'
  | 'xen-pv-p2m'
  | 'virtio-mem'
  | 'kpageflags-memmap'
  | 'kexec-overlap'
  | 'device-in-dump'
  | 'content-not-ram'
  | 'type-overlap'
  | 'protected-excluded'
  | 'offline-total';

export interface CheckDef {
  id: CheckId;
  title: string;
  severity: Severity;
  why: string;
}

export const CHECKS: readonly CheckDef[] = [
  {
    id: 'offline-backed',
    title: 'offline pages the hypervisor backs',
    severity: 'error',
    why: 'A page marked PG_offline is one the guest gave back (balloon) or never onlined; if the hypervisor still backs it, the memory is leaked to the balloon or the flag is stale. Dump tools skip it, so any data there is lost from the dump.',
  },
  {
    id: 'unbacked-unflagged',
    title: 'unbacked pages not flagged offline',
    severity: 'error',
    why: 'The hypervisor does not back these pfns, but their struct page does not say PG_offline and they are not device memory. makedumpfile and any tool without the pfn_is_ram model will read them: the hypervisor fabricates zero pages (Xen HVM sends every 8-byte read to qemu-dm, 512 per page, at full dom0 load) or the kdump kernel crashes (Hyper-V).',
  },
  {
    id: 'xen-pv-p2m',
    title: 'Xen PV: PG_offline disagrees with the P2M',
    severity: 'error',
    why: 'In a Xen PV guest the balloon driver writes INVALID_P2M_ENTRY for every pfn it hands back and marks the page PG_offline; within RAM sections the two must agree. A mismatch means ballooned pages a dump tool will read, or backed pages it will skip.',
  },
  {
    id: 'virtio-mem',
    title: 'virtio-mem: unplugged memory not flagged offline',
    severity: 'error',
    why: 'virtio-mem marks unplugged subblocks of online memory blocks PG_offline (fake offline). An unplugged, unflagged page is read by dump tools that do not ask the device. (Plugged pages may be offline: a balloon inflates virtio-mem memory like any other.)',
  },
  {
    id: 'kpageflags-memmap',
    title: 'kpageflags disagrees with mem_map',
    severity: 'error',
    why: 'Both come from the same struct page (KPF_OFFLINE from PageOffline, KPF_BUDDY from free blocks, KPF_SLAB from slab pages, KPF_NOPAGE for memory without an online memmap). If a snapshot of /proc/kpageflags and the dump disagree, one of them is not from this boot or the flags changed under the dump.',
  },
  {
    id: 'kexec-overlap',
    title: 'kexec segments over ballooned or offline pfns',
    severity: 'error',
    why: 'kexec loads its segments into guest-physical memory; in a ballooned Xen guest those pfns must be populated (balloon_populate_range) and kept out of the balloon. A segment over a ballooned pfn is written into memory the hypervisor does not back: kexec fails or the new kernel reads garbage.',
  },
  {
    id: 'device-in-dump',
    title: 'ZONE_DEVICE memory inside a PT_LOAD',
    severity: 'error',
    why: 'Unpopulated ranges (Xen scratch pages from unpopulated-alloc, other ZONE_DEVICE memory) are not System RAM; there is no data behind them. Listing them in the vmcore means dump tools read and store data that never existed, or fault on it.',
  },
  {
    id: 'content-not-ram',
    title: 'unbacked pfns with non-zero content',
    severity: 'error',
    why: 'The kernel zero-fills pfns its pfn_is_ram callbacks reject, so in a /proc/vmcore copy they read as zeros. Non-zero content there means the RAM model does not match the guest this dump came from.',
  },
  {
    id: 'type-overlap',
    title: 'pages with more than one page type',
    severity: 'warning',
    why: 'Before Linux 6.12 page types were bits cleared in page_type, so a corrupt or racing struct page can claim two (buddy and offline, say); since 6.12 a page has exactly one. Dump tools decide by the first type they test, so such pages are classified arbitrarily.',
  },
  {
    id: 'protected-excluded',
    title: 'protected pages a filter drops',
    severity: 'error',
    why: 'The kernel image (text, data, bss: the PG_reserved pages the kernel-text mapping maps) and ranges named with --protect must be in every dump unless a status rule excludes them (offline, hwpoison, free, not RAM): crash reads symbols there at start-up and stops with "page excluded" otherwise (makedumpfile issue #21: kernel bss pages with PG_lru dropped as cache). Counted here: protected pages missing from this dump without such a status, and protected pages a -d 31 content rule would drop (dumpsieve filter keeps them).',
  },
  {
    id: 'offline-total',
    title: 'offline pages do not add up to the balloon size',
    severity: 'warning',
    why: 'Every page a balloon holds is PG_offline, so their count should match the balloon size (virtio-balloon num_pages, Xen balloon_low + balloon_high, hv_balloon num_pages_ballooned). A large difference means unflagged balloon pages or stale flags.',
  },
];
