/**
 * makedumpfile 1.7.2 on synthetic images: it must accept them and its
 * per-class excluded counts (--message-level 31 report) must equal what
 * the truth manifest predicts under makedumpfile's rules, at -d 0, 1 and
 * 31, for every scenario of the eras it supports (4.19, 5.10,
 * 5.10-nohugetlb), for 6.1 (same layout as 5.10, newer than 1.7.2 knows),
 * for FLATMEM and a non-zero phys_base, and with faults planted. Later
 * eras run too: 1.7.2 warns that the kernel is not supported and misses
 * what it cannot decode (folio orders, hugetlb without a dtor), which the
 * prediction derives from the VMCOREINFO keys it reads.
 */
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTruth, synthesize } from '../../src/synth/index.js';
import { mdfView, parseMdfReport, parseVmcoreinfo, predictMakedumpfile, readPhdrs, tempDir, vmcoreinfoText } from '../synth/helpers.js';
import { havePeers } from './peers.js';

const MiB = 2 ** 20;
const ok = havePeers('synth vs makedumpfile', 'makedumpfile');

interface Case {
  scenario: string;
  kernel: string;
  size?: number;
  memoryModel?: 'sparsemem' | 'flatmem';
  physBase?: number;
  faults?: string[];
  /** makedumpfile warns that the kernel is newer than it supports. */
  unsupported?: boolean;
}

const ALL = ['xen-hvm-balloon', 'xen-pv-balloon', 'virtio-balloon', 'hv-balloon', 'virtio-mem', 'vmware-balloon', 'plain'];
const cases: Case[] = [];
for (const kernel of ['4.19', '5.10', '5.10-nohugetlb', '6.1']) {
  for (const scenario of ALL) {
    if (kernel === '4.19' && (scenario === 'virtio-mem' || scenario === 'vmware-balloon')) continue;
    cases.push({ scenario, kernel, size: scenario === 'plain' ? 128 * MiB : 64 * MiB, unsupported: kernel === '6.1' });
  }
}
cases.push(
  { scenario: 'plain', kernel: '5.10', memoryModel: 'flatmem' },
  { scenario: 'xen-hvm-balloon', kernel: '5.10', physBase: 0x20_0000 },
  { scenario: 'virtio-balloon', kernel: '4.19', memoryModel: 'flatmem', physBase: 0x400_0000, size: 160 * MiB },
  { scenario: 'hv-balloon', kernel: '5.10-nohugetlb', physBase: 0x100_0000 },
  { scenario: 'xen-hvm-balloon', kernel: '5.10', faults: ['unflagged-balloon', 'kexec-over-balloon', 'scratch-in-ptload'] },
  { scenario: 'virtio-balloon', kernel: '5.10', faults: ['backed-offline', 'stale-unbacked', 'kpageflags-mismatch'] },
  { scenario: 'plain', kernel: '4.19', faults: ['type-overlap'], size: 128 * MiB },
  { scenario: 'vmware-balloon', kernel: '5.10', faults: ['type-overlap', 'unflagged-balloon'] },
);
for (const kernel of ['6.6', '6.11', '6.12']) {
  for (const scenario of ['xen-hvm-balloon', 'virtio-balloon', 'plain']) cases.push({ scenario, kernel, size: 128 * MiB, unsupported: true });
}

const label = (c: Case): string =>
  `${c.scenario} ${c.kernel}${c.memoryModel === 'flatmem' ? ' flatmem' : ''}${c.physBase ? ` phys_base 0x${c.physBase.toString(16)}` : ''}${c.faults ? ` faults ${c.faults.join(',')}` : ''}`;

describe.skipIf(!ok)('makedumpfile 1.7.2 filters synthetic images as the truth predicts', () => {
  it.each(cases.map((c) => [label(c), c] as const))('%s', async (_name, c) => {
    const { dir, cleanup } = await tempDir('synth-mdf');
    const out = join(dir, 'guest.vmcore');
    try {
      await synthesize({ out, size: c.size ?? 64 * MiB, ...c });
      const { header, runs } = await readTruth(`${out}.truth`);
      const { notes } = await readPhdrs(out);
      const view = mdfView(parseVmcoreinfo(vmcoreinfoText(notes)));
      for (const level of [0, 1, 31]) {
        const dump = join(dir, `guest.d${level}.kdump`);
        const r = spawnSync('makedumpfile', ['-d', String(level), '--message-level', '31', out, dump], { encoding: 'utf8', maxBuffer: 64 << 20 });
        const text = `${r.stdout}\n${r.stderr}`;
        expect(r.status, `makedumpfile -d ${level} failed:\n${text.slice(-3000)}`).toBe(0);
        expect(/kernel version is not supported/.test(text), 'version warning').toBe(!!c.unsupported);
        const got = parseMdfReport(text);
        const want = predictMakedumpfile(header, runs, view, level);
        expect(got, `-d ${level}`).toEqual(want);
        await rm(dump, { force: true });
      }
    } finally {
      await cleanup();
    }
  });
});
