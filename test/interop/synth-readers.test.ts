/**
 * libkdumpfile and drgn read synthetic images: every page of every
 * PT_LOAD (and the pfns just around each) reads SHA-1-identical to what
 * the content generator makes of the truth's runs, and pfns outside the
 * PT_LOADs read as absent.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildGuest, readTruth, synthesize, type GuestOptions, type TruthRun } from '../../src/synth/index.js';
import { tempDir } from '../synth/helpers.js';
import { havePeers, readWithPeer } from './peers.js';

const MiB = 2 ** 20;
const ok = havePeers('synth vs libkdumpfile and drgn', 'libkdumpfile', 'drgn');
const ZERO_SHA1 = createHash('sha1').update(Buffer.alloc(4096)).digest('hex');

const cases: Array<GuestOptions & { name: string }> = [
  { name: 'xen-hvm-balloon 6.1', scenario: 'xen-hvm-balloon', kernel: '6.1', size: 64 * MiB },
  { name: 'plain 5.10 flatmem phys_base 2 MiB', scenario: 'plain', kernel: '5.10', size: 96 * MiB, memoryModel: 'flatmem', physBase: 0x20_0000 },
  { name: 'virtio-balloon 4.19', scenario: 'virtio-balloon', kernel: '4.19', size: 64 * MiB },
  { name: 'xen-pv-balloon 6.12 (RAM above 128 GiB)', scenario: 'xen-pv-balloon', kernel: '6.12', size: 64 * MiB },
  { name: 'virtio-mem 5.10', scenario: 'virtio-mem', kernel: '5.10', size: 64 * MiB },
  { name: 'hv-balloon 6.6 with stale unbacked pages', scenario: 'hv-balloon', kernel: '6.6', size: 64 * MiB, faults: ['stale-unbacked'] },
];

describe.skipIf(!ok)('libkdumpfile and drgn read synthetic images page for page', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const { dir, cleanup } = await tempDir('synth-readers');
    try {
      await readAll(c, join(dir, 'guest.vmcore'));
    } finally {
      await cleanup();
    }
  });
});

/** Generate the guest, then read its pages with both readers and compare with the content generator. */
async function readAll(c: GuestOptions, out: string): Promise<void> {
  await synthesize({ ...c, out });
  const { header, runs } = await readTruth(`${out}.truth`);
  const guest = buildGuest(c);
  // Every pfn of each PT_LOAD and two on each side.
  const ranges: Array<[number, number]> = header.loads.map((l) => [Math.max(0, l.start - 2), l.end + 2]);
  const runAt = (pfn: number): TruthRun | undefined => runs.find((r) => pfn >= r.start && pfn < r.start + r.count);
  const loadStarts = new Set(header.loads.map((l) => l.start));
  const buf = new Uint8Array(4096);
  const expected = new Map<number, string | undefined>();
  for (const [a, b] of ranges) {
    for (let pfn = a; pfn < b; pfn++) {
      const r = runAt(pfn);
      if (!r?.load) {
        expected.set(pfn, undefined);
        continue;
      }
      guest.fillPages(pfn, 1, buf, 0);
      const sha = createHash('sha1').update(buf).digest('hex');
      // The generator agrees with the truth about zero pages and stamps data pages with their pfn.
      if (r.content === 'zero') expect(sha).toBe(ZERO_SHA1);
      if (r.content === 'data') expect(Buffer.from(buf.buffer, 0, 8).readBigUInt64LE(0)).toBe(BigInt(pfn));
      expected.set(pfn, sha);
    }
  }
  for (const reader of ['libkdumpfile', 'drgn'] as const) {
    const got = readWithPeer(reader, out, ranges);
    const bad: string[] = [];
    for (const [pfn, want] of expected) {
      const g = got.pages.get(pfn);
      if (!g) bad.push(`0x${pfn.toString(16)}: not read`);
      else if (want === undefined) {
        // libkdumpfile 0.5.1 reads the missing page just below a PT_LOAD as zeros (find_closest_file_load).
        const tolerated = reader === 'libkdumpfile' && loadStarts.has(pfn + 1) && g.ok && g.sha1 === ZERO_SHA1;
        if (g.ok && !tolerated) bad.push(`0x${pfn.toString(16)}: read data outside the PT_LOADs`);
        if (!g.ok && g.error !== 'absent') bad.push(`0x${pfn.toString(16)}: ${g.error}`);
      } else if (!g.ok) bad.push(`0x${pfn.toString(16)}: ${g.error}`);
      else if (g.sha1 !== want) bad.push(`0x${pfn.toString(16)}: sha1 ${g.sha1}, expected ${want}`);
      if (bad.length > 10) break;
    }
    expect(bad, reader).toEqual([]);
    if (reader === 'libkdumpfile') {
      expect(got.attrs['arch.name']).toBe('x86_64');
      expect(got.attrs['linux.uts.release']).toBe(guest.era.osrelease);
    }
  }
}
