/**
 * Protected pages: the kernel image, the kernel log's buffers and the
 * ranges named with --protect.
 *
 * A protected page is kept against the *content* rules (zero, cache,
 * private cache, user data): crash and drgn read the kernel's text, data
 * and bss at start-up and stop with "page excluded" where a filter dropped
 * one (makedumpfile issue #21: kernel bss pages with a stale PG_lru were
 * dropped as cache). The *status* rules (offline, hwpoison, not RAM, free,
 * unaccepted) win over protection: such a page is never read, whatever
 * range it lies in.
 *
 * The kernel image is found exactly, not as everything its mappings cover.
 * On x86_64 the kernel-text mapping (__START_KERNEL_map) maps the image in
 * 2 MiB pages up to the next 2 MiB boundary past _brk_end
 * (cleanup_highmap(), arch/x86/mm/init_64.c), and a kexec-style kernel-text
 * PT_LOAD covers [_text, _end). Inside that span live ordinary pages too:
 * the init sections freed after boot (free_initmem(): "unused kernel image
 * (initmem)"), the text/rodata and rodata/data gaps mark_rodata_ro() frees
 * (arch/x86/mm/init_64.c, free_kernel_image_pages()), and the tail of the
 * last 2 MiB page past the image. Those go back to the buddy allocator and
 * then hold free, anonymous, cache, balloon or poisoned pages like any
 * other memory. The image itself is memblock-reserved at boot
 * (memblock_reserve(_text, __end_of_kernel_reserve - _text) in
 * arch/x86/kernel/setup.c), so its struct pages carry PG_reserved
 * (reserve_bootmem_region()); freeing a page clears it
 * (free_reserved_page()).
 * The image is therefore the kernel-text mapping intersected with the
 * PG_reserved pages.
 */
import { DumpError } from '../core/errors.js';
import { RangeSet, RangeSetBuilder } from '../core/rangeset.js';
import type { DumpReader } from '../formats/types.js';
import { MemMapFlagSource, type PageFlagSource } from '../classify/flagsource.js';
import { Prop, PropWindow } from '../kernel/props.js';
import { X86_64Translator } from '../kernel/x86_64.js';
import { WINDOW } from './scan.js';
import { kernelLogPfns } from './dmesg.js';

/** Where the kernel image is, or why it could not be found. */
export type KernelImage =
  | {
      found: true;
      /** Pfns of the image proper. */
      ranges: RangeSet;
      /** Pfns the kernel-text mapping covers (the image and its neighbours). */
      mapped: number;
      /** How the image was told from its neighbours. */
      rule: 'mapping-and-reserved' | 'mapping';
    }
  | { found: false; why: string };

export interface Protection {
  /** Every protected pfn (image, log and --protect), or undefined when none. */
  set: RangeSet | undefined;
  image: KernelImage;
  /**
   * Pfns of the kernel log's structures (the printk ring buffer or
   * log_buf): never-written parts of a ring are zero pages, and `dmesg`
   * must read the same log from a filtered dump as from its input.
   */
  logPages: number;
  /** Pfns named with --protect. */
  extraPages: number;
}

/**
 * The kernel image's pfns: the kernel-text mapping intersected with
 * PG_reserved pages of the page-flag source. Without a page-flag source
 * the whole mapping is used (status rules cannot be decided then either).
 */
export async function locateKernelImage(reader: DumpReader, flags: PageFlagSource | undefined): Promise<KernelImage> {
  const vi = reader.info.vmcoreinfo;
  if (!vi) return { found: false, why: 'the image has no VMCOREINFO (no page tables to find it by)' };
  let mapping: RangeSet;
  try {
    const tr = flags instanceof MemMapFlagSource ? flags.translator : X86_64Translator.fromVmcoreinfo(vi, reader);
    mapping = RangeSet.from(await tr.kernelImagePfns());
  } catch (err) {
    if (err instanceof DumpError) return { found: false, why: `the kernel-text mapping cannot be walked: ${err.message}` };
    throw err;
  }
  if (mapping.isEmpty) return { found: false, why: 'the kernel-text mapping maps no page' };
  if (!flags) return { found: true, ranges: mapping, mapped: mapping.size, rule: 'mapping' };

  const win = new PropWindow(WINDOW);
  const image = new RangeSetBuilder();
  for (const r of mapping) {
    for (let s = r.start; s < r.end; s += WINDOW) {
      const n = Math.min(WINDOW, r.end - s);
      win.reset(s, n);
      await flags.fill(win);
      const props = win.props;
      for (let i = 0; i < n; ) {
        if (!(props[i]! & Prop.RESERVED)) {
          i++;
          continue;
        }
        let j = i + 1;
        while (j < n && props[j]! & Prop.RESERVED) j++;
        image.add(s + i, s + j);
        i = j;
      }
    }
  }
  const ranges = image.build();
  if (ranges.isEmpty) return { found: false, why: 'no page of the kernel-text mapping is PG_reserved' };
  return { found: true, ranges, mapped: mapping.size, rule: 'mapping-and-reserved' };
}

/** The kernel image and log plus the ranges the user named. */
export async function protection(reader: DumpReader, flags: PageFlagSource | undefined, extra: RangeSet | undefined): Promise<Protection> {
  const image = await locateKernelImage(reader, flags);
  const log = RangeSet.from(await kernelLogPfns(reader, flags instanceof MemMapFlagSource ? flags.translator : undefined));
  let set = image.found ? image.ranges.union(log) : log;
  if (extra && !extra.isEmpty) set = set.union(extra);
  return { set: set.isEmpty ? undefined : set, image, logPages: log.size, extraPages: extra?.size ?? 0 };
}
