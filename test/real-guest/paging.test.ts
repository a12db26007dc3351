/**
 * Address translation on real kernels, 4-level and 5-level (LA57), with
 * KASLR: dumpsieve's page-table walk against libkdumpfile's (libaddrxlat)
 * and against what the guest itself said (/proc/iomem, /proc/kallsyms,
 * uname).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { openDump } from '../../src/formats/registry.js';
import type { DumpReader } from '../../src/formats/types.js';
import { MemMapFlagSource } from '../../src/classify/flagsource.js';
import { readUtsname } from '../../src/kernel/utsname.js';
import { havePeers } from '../interop/peers.js';
import { CI_GUESTS, kernelMapping, kvRead, loadGuest, presentMap, vmcoreinfoLines, type Guest } from './real.js';

const ok = havePeers('real-guest address translation × libkdumpfile', 'libkdumpfile');

describe.runIf(ok).each(CI_GUESTS.map((n) => [n]))('%s', (name) => {
  let g: Guest;
  let reader: DumpReader;
  let src: MemMapFlagSource;
  beforeAll(async () => {
    g = loadGuest(name);
    reader = await openDump(g.elf);
    src = await MemMapFlagSource.open(reader);
    return () => reader.close();
  });

  it('walks as many levels as the guest ran with (-cpu max: 5 on Debian 6.x; la57=off and 5.10: 4)', () => {
    const vi = vmcoreinfoLines(g.elf);
    const want = g.truth.description.cpu === 'max' && g.truth.description.kernel !== '5.10' ? 5 : 4;
    expect(Number(vi.get('NUMBER(pgtable_l5_enabled)') ?? 0) === 1 ? 5 : 4).toBe(want);
    expect(src.translator.levels).toBe(want);
  });

  it("finds the kernel-text mapping where the guest's /proc/iomem and /proc/kallsyms put the image", async () => {
    const m = kernelMapping(g.truth);
    expect(await src.translator.kernelImagePfns()).toEqual([{ start: m.start, end: m.end }]);
  });

  it("reads the guest's own release at init_uts_ns", async () => {
    const u = await readUtsname(reader.info.vmcoreinfo!, src.translator);
    expect(u?.sysname).toBe('Linux');
    expect(u?.release).toBe(g.truth.guest.release);
  });

  it('reads mem_section and struct pages (direct map, vmemmap) byte-identical to libkdumpfile', async () => {
    const vi = reader.info.vmcoreinfo!;
    const addrs: Array<[bigint, number]> = [[vi.symbol('mem_section')!, 256]];
    // Struct pages of pfns spread over every RAM range QEMU dumped.
    const ram = await presentMap(g.elf);
    const size = src.memmap.pageStructSize;
    for (let p = 0; p < ram.length; p += 4099) {
      if (!ram[p]) continue;
      const [piece] = src.memmap.pieces(p, p + 1);
      if (piece) addrs.push([piece.vaddr, size * 4]);
    }
    expect(addrs.length).toBeGreaterThan(20);
    const theirs = kvRead(g.elf, addrs);
    for (let i = 0; i < addrs.length; i++) {
      const [v, n] = addrs[i]!;
      const mine = new Uint8Array(n);
      await src.translator.read(v, n, mine);
      expect(theirs[i], `0x${v.toString(16)}`).toBeDefined();
      expect(Buffer.from(mine).equals(theirs[i]!), `0x${v.toString(16)}`).toBe(true);
    }
  });
});
