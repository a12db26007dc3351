/**
 * Offline pages on real guests: what dumpsieve excludes as offline is
 * exactly what the guest itself flagged KPF_OFFLINE in /proc/kpageflags,
 * as many pages as the balloon holds (plus virtio-mem's fake-offline
 * sub-blocks), and not one byte of them is read — at every dump level and
 * in every output format.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterDump, type FilterOptions } from '../../src/pipeline/filter.js';
import { readReasonsMap } from '../../src/pipeline/reasons-map.js';
import { Reason } from '../../src/classify/reasons.js';
import { CountingSource } from '../../src/io/source.js';
import type { SegmentInfo } from '../../src/formats/types.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import {
  CI_GUESTS,
  KPF,
  PAGE,
  count,
  fakeOfflinePages,
  hexPfn,
  kpfWords,
  loadGuest,
  loadMap,
  minus,
  offlineMap,
  segmentsOf,
  touchedPfns,
  type Guest,
} from './real.js';

/** The guest with every output format at levels 0, 1 and 31; the others get -d 31 and one codec each. */
const MATRIX_GUEST = '6.1-balloon-l5';
const CODEC_OF: Record<string, FilterOptions['codec']> = {
  '5.10-balloon': 'zlib',
  '6.1-vmem-l4': 'lzo',
  '6.12-balloon-l4': 'zstd',
  '6.12-vmem-fake-offline-l5': 'snappy',
};
const OUTPUTS: Array<{ name: string; opts: Partial<FilterOptions> }> = [
  { name: 'kdump', opts: { codec: 'none' } },
  { name: 'kdump zlib', opts: { codec: 'zlib' } },
  { name: 'kdump lzo', opts: { codec: 'lzo' } },
  { name: 'kdump snappy', opts: { codec: 'snappy' } },
  { name: 'kdump zstd', opts: { codec: 'zstd' } },
  { name: 'ELF', opts: { format: 'elf' } },
];

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-real-offline-');
});
afterAll(() => dir?.remove());

interface Ctx {
  g: Guest;
  segs: SegmentInfo[];
  /** Guest KPF_OFFLINE pfns. */
  offline: Uint8Array;
  /** Pfns a PT_LOAD of QEMU's ELF covers (sized like the guest's table). */
  loaded: Uint8Array;
}

async function context(name: string): Promise<Ctx> {
  const g = loadGuest(name);
  const segs = await segmentsOf(g.elf);
  const offline = offlineMap(g.truth);
  return { g, segs, offline, loaded: loadMap(segs, offline.length) };
}

/** Run filter with a counting source and a reasons map; check the offline set and that none of it was read. */
async function filterAndCheck(c: Ctx, label: string, opts: Partial<FilterOptions>): Promise<void> {
  const file = label.replace(/\W+/g, '-');
  const map = dir.file(`${c.g.name}-${file}.reasons`);
  let counter: CountingSource | undefined;
  const report = await filterDump({
    input: c.g.elf,
    output: dir.file(`${c.g.name}-${file}.out`),
    reasonsFile: map,
    ...opts,
    wrapSource: (src) => (counter = new CountingSource(src)),
  });
  const n = c.offline.length;
  const excludedOffline = new Uint8Array(n);
  for await (const r of readReasonsMap(map)) if (r.reason === Reason.OFFLINE) excludedOffline.fill(1, r.start, Math.min(r.end, n));
  // The guest's offline pfns that QEMU dumped are exactly those excluded as offline.
  const want = c.offline.map((v, p) => v & c.loaded[p]!);
  expect(minus(want, excludedOffline).slice(0, 5).map(hexPfn), `${label}: guest-offline pfns not excluded as offline`).toEqual([]);
  expect(minus(excludedOffline, want).slice(0, 5).map(hexPfn), `${label}: pfns excluded as offline the guest did not flag`).toEqual([]);
  expect(report.pages.excluded.offline, label).toBe(count(want));
  // Not one byte of an offline page was read.
  const touched = touchedPfns(counter!, c.segs, n);
  const read = [];
  for (let p = 0; p < n; p++) if (c.offline[p] && touched[p]) read.push(p);
  expect(read.slice(0, 5).map(hexPfn), `${label}: offline pages read (${read.length})`).toEqual([]);
}

describe.each(CI_GUESTS.map((n) => [n]))('%s', (name) => {
  let c: Ctx;
  beforeAll(async () => {
    c = await context(name);
  });

  it("the guest's own truth holds together: KPF_OFFLINE pages = balloon pages + fake-offline virtio-mem pages", () => {
    const t = c.g.truth;
    expect(t.balloon.actualBytes, 'the balloon reached its target').toBe(t.balloon.targetBytes);
    expect(t.balloon.inflatedBytes).toBe(t.description.balloonMiB << 20);
    const kpfOffline = t.guest.kpf.bits['23'] ?? 0;
    expect(count(c.offline)).toBe(kpfOffline);
    // The table saved to the disk (taken last) flags the very same pfns.
    const words = kpfWords(c.g);
    expect(words.length).toBe(t.guest.kpf.entries);
    const saved = new Uint8Array(words.length);
    for (let p = 0; p < words.length; p++) saved[p] = (words[p]! >>> KPF.OFFLINE) & 1;
    expect(Buffer.from(saved).equals(Buffer.from(c.offline))).toBe(true);
    expect(kpfOffline).toBe(t.balloon.inflatedPages + fakeOfflinePages(t));
    if (t.vmem) expect(t.vmem.pluggedSize).toBe(t.description.vmem!.shrinkToMiB << 20);
    if (name.includes('fake-offline')) expect(fakeOfflinePages(t), 'sub-blocks unplugged inside online blocks').toBeGreaterThan(0);
  });

  it('offline pages QEMU left out of the dump are exactly the fake-offline virtio-mem ones, inside the device', () => {
    const t = c.g.truth;
    const outside = minus(c.offline, c.loaded);
    // QEMU dumps only the plugged parts of a virtio-mem device (its
    // RamDiscardManager replays populated ranges), so unplugged sub-blocks
    // are not PT_LOAD pages at all; balloon pages are (they read as zeros).
    expect(outside.length).toBe(fakeOfflinePages(t));
    for (const p of outside) {
      expect(t.vmem, hexPfn(p)).toBeDefined();
      expect(p * PAGE).toBeGreaterThanOrEqual(t.vmem!.address);
      expect(p * PAGE).toBeLessThan(t.vmem!.address + t.vmem!.maxSize);
    }
  });

  if (name === MATRIX_GUEST) {
    for (const level of [0, 1, 31]) {
      for (const o of OUTPUTS) {
        it(`-d ${level}, ${o.name}: offline = the guest's KPF_OFFLINE pfns, none read`, async () => {
          await filterAndCheck(c, `d${level}-${o.name}`, { dumpLevel: level, ...o.opts });
        });
      }
    }
  } else {
    it(`-d 31, ${CODEC_OF[name] ?? 'none'}: offline = the guest's KPF_OFFLINE pfns, none read`, async () => {
      await filterAndCheck(c, `d31-${CODEC_OF[name]}`, { dumpLevel: 31, codec: CODEC_OF[name] ?? 'none' });
    });
  }
});
