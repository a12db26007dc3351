/**
 * The VMCOREINFO a kernel of each era writes (crash_save_vmcoreinfo_init()
 * in kernel/crash_core.c, kernel/vmcore_info.c from 6.9, plus x86_64's
 * arch_crash_save_vmcoreinfo()), in the kernel's order and formats:
 * NUMBER signed decimal, SYMBOL hex without 0x, OFFSET/SIZE/LENGTH
 * unsigned decimal.
 *
 * Keys are gated as the kernel gates them (CONFIG_HUGETLB_PAGE,
 * CONFIG_SPARSEMEM vs FLATMEM, the version that added or removed each).
 * Left out: SYMBOL()s of objects the stub kernel does not contain
 * (vmap_area_list, kallsyms tables, node_data, contig_page_data), so no
 * reader follows a pointer into nothing. The printk keys come from the
 * guest's log (printk.ts), where log_buf_vmcoreinfo_setup() puts them. The zone/pglist_data sizes and offsets are those of a real
 * x86_64 6.2 kernel (Fedora 6.2.15); the stub has no such structures.
 */
import type { EraDef } from './eras.js';
import { pfnHash } from './rng.js';
import {
  MAX_PHYSMEM_BITS,
  MEM_SECTION_SIZE,
  NODEMASK_SIZE,
  NR_SECTION_ROOTS,
  SECTION_SIZE_BITS,
  VMALLOC_START,
  VMEMMAP_START,
  type KernelLayout,
} from './layout.js';

export interface VmcoreinfoInput {
  era: EraDef;
  layout: KernelLayout;
  seed: number;
  /** log_buf_vmcoreinfo_setup()'s lines (printk.ts). */
  printk?: ReadonlyArray<readonly [string, string | number]> | undefined;
}

const hex = (v: bigint): string => v.toString(16);
const signed = (u32: number): number => u32 | 0;

export function buildVmcoreinfo({ era, layout, seed, printk }: VmcoreinfoInput): string {
  const L: string[] = [];
  const add = (k: string, v: string | number): void => {
    L.push(`${k}=${v}`);
  };
  const v = era.version;
  const sparse = layout.model === 'sparsemem';

  add('OSRELEASE', era.osrelease);
  if (era.has.buildId) {
    let id = '';
    for (let i = 0; i < 5; i++) id += pfnHash(seed, i, 0xb1d).toString(16).padStart(8, '0');
    add('BUILD-ID', id);
  }
  add('PAGESIZE', 4096);
  add('SYMBOL(init_uts_ns)', hex(layout.initUtsNs));
  if (era.utsOffsetExported) add('OFFSET(uts_namespace.name)', era.utsNameOffset);
  add('SYMBOL(node_online_map)', hex(layout.nodeOnlineMap));
  add('SYMBOL(swapper_pg_dir)', hex(layout.initTopPgt));
  add('SYMBOL(_stext)', hex(layout.initTopPgt));
  if (v >= 609) add('NUMBER(VMALLOC_START)', `0x${hex(VMALLOC_START)}`);
  if (!sparse) add('SYMBOL(mem_map)', hex(layout.memMapSymbol));
  if (sparse) {
    if (v >= 609) add('SYMBOL(vmemmap)', hex(VMEMMAP_START));
    add('SYMBOL(mem_section)', hex(layout.memSectionSymbol!));
    add('LENGTH(mem_section)', NR_SECTION_ROOTS);
    add('SIZE(mem_section)', MEM_SECTION_SIZE);
    add('OFFSET(mem_section.section_mem_map)', 0);
    if (v >= 500) {
      add('NUMBER(SECTION_SIZE_BITS)', SECTION_SIZE_BITS);
      add('NUMBER(MAX_PHYSMEM_BITS)', MAX_PHYSMEM_BITS);
    }
  }
  add('SIZE(page)', 64);
  add('SIZE(pglist_data)', 175168);
  add('SIZE(zone)', 1728);
  add('SIZE(free_area)', 104);
  add('SIZE(list_head)', 16);
  add('SIZE(nodemask_t)', NODEMASK_SIZE);
  add('OFFSET(page.flags)', 0);
  add('OFFSET(page._refcount)', 52);
  add('OFFSET(page.mapping)', 24);
  add('OFFSET(page.lru)', 8);
  add('OFFSET(page._mapcount)', 48);
  add('OFFSET(page.private)', 40);
  if (era.compound === 'tail-fields') {
    add('OFFSET(page.compound_dtor)', 16);
    add('OFFSET(page.compound_order)', 17);
  }
  add('OFFSET(page.compound_head)', 8);
  add('OFFSET(pglist_data.node_zones)', 0);
  add('OFFSET(pglist_data.nr_zones)', 172512);
  // CONFIG_FLATMEM adds node_mem_map after nr_zones and shifts what follows.
  const flat = sparse ? 0 : 8;
  if (!sparse) add('OFFSET(pglist_data.node_mem_map)', 172520);
  add('OFFSET(pglist_data.node_start_pfn)', 172520 + flat);
  add('OFFSET(pglist_data.node_spanned_pages)', 172536 + flat);
  add('OFFSET(pglist_data.node_id)', 172544 + flat);
  add('OFFSET(zone.free_area)', 256);
  add('OFFSET(zone.vm_stat)', 1536);
  add('OFFSET(zone.spanned_pages)', 144);
  add('OFFSET(free_area.free_list)', 0);
  add('OFFSET(list_head.next)', 0);
  add('OFFSET(list_head.prev)', 8);
  if (v < 609) {
    add('OFFSET(vmap_area.va_start)', 0);
    add('OFFSET(vmap_area.list)', 40);
  }
  add('LENGTH(zone.free_area)', 11);
  for (const [k, val] of printk ?? []) add(k, val);
  add('LENGTH(free_area.free_list)', 6);
  add('NUMBER(NR_FREE_PAGES)', 0);
  add('NUMBER(PG_lru)', era.pg.lru);
  add('NUMBER(PG_private)', era.pg.private);
  add('NUMBER(PG_swapcache)', era.pg.swapcache);
  add('NUMBER(PG_swapbacked)', era.pg.swapbacked);
  if (era.pg.slab !== undefined) add('NUMBER(PG_slab)', era.pg.slab);
  else add('NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)', signed(era.types.slab!));
  add('NUMBER(PG_hwpoison)', era.pg.hwpoison);
  add('NUMBER(PG_head_mask)', 2 ** era.pg.head);
  add('NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)', signed(era.types.buddy));
  if (era.hugetlb === 'page-type') {
    add('NUMBER(PAGE_HUGETLB_MAPCOUNT_VALUE)', signed(era.types.hugetlb!));
    add('NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)', signed(era.types.offline));
  } else if (era.hugetlbConfig) {
    if (era.hugetlb === 'dtor') add('NUMBER(HUGETLB_PAGE_DTOR)', era.hugetlbDtor!);
    if (era.hugetlb === 'flags1-bit') add('NUMBER(PG_hugetlb)', era.flags1HugetlbBit!);
    if (era.offlineExported) add('NUMBER(PAGE_OFFLINE_MAPCOUNT_VALUE)', signed(era.types.offline));
  }
  // arch_crash_save_vmcoreinfo()
  add('NUMBER(phys_base)', layout.physBase);
  add('SYMBOL(init_top_pgt)', hex(layout.initTopPgt));
  add('NUMBER(pgtable_l5_enabled)', 0);
  add('KERNELOFFSET', 0);
  add('NUMBER(KERNEL_IMAGE_SIZE)', 1073741824);
  if (v >= 500) add('NUMBER(sme_mask)', 0);
  // crash_save_vmcoreinfo() at panic time.
  add('CRASHTIME', 1_700_000_000 + (seed % 100_000_000));
  return `${L.join('\n')}\n`;
}
