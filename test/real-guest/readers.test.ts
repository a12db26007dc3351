/**
 * Real readers on real dumps. The reference is QEMU's own ELF dump read by
 * drgn (physical pages):
 * - QEMU's kdump-zlib output (makedumpfile's flattened format) holds the
 *   same pages: read in place by dumpsieve, and by libkdumpfile after
 *   makedumpfile -R (libkdumpfile does not open the flattened file itself);
 * - dumpsieve's filtered outputs (kdump-compressed and ELF) are read
 *   page-identical by libkdumpfile and drgn, for every page they hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { filterDump } from '../../src/pipeline/filter.js';
import { openDump } from '../../src/formats/registry.js';
import type { Codec } from '../../src/formats/types.js';
import { havePeers, readWithPeer } from '../interop/peers.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { CI_GUESTS, PAGE, hexPfn, loadGuest, presentMap, runsOf, type Guest } from './real.js';

const ok = havePeers('real dumps read by drgn and libkdumpfile', 'drgn', 'libkdumpfile', 'makedumpfile');
const CODEC_OF: Record<string, Codec> = {
  '5.10-balloon': 'zlib',
  '6.1-balloon-l5': 'zstd',
  '6.1-vmem-l4': 'lzo',
  '6.12-balloon-l4': 'snappy',
  '6.12-vmem-fake-offline-l5': 'zlib',
};

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-real-readers-');
});
afterAll(() => dir?.remove());

/** sha1 of each page a peer read, for the pfns set in `m`; errors as such. */
function peerSha(reader: 'drgn' | 'libkdumpfile', dump: string, m: Uint8Array): Map<number, string> {
  const r = readWithPeer(reader, dump, runsOf(m));
  const out = new Map<number, string>();
  for (const [pfn, v] of r.pages) out.set(pfn, v.ok ? v.sha1 : `error: ${v.error}`);
  return out;
}

/** sha1 of each page dumpsieve's reader returns, for the pfns set in `m`. */
async function dumpsieveSha(dump: string, m: Uint8Array): Promise<Map<number, string>> {
  const r = await openDump(dump);
  const out = new Map<number, string>();
  try {
    const buf = new Uint8Array(256 * PAGE);
    for (const [s, e] of runsOf(m)) {
      for (let p = s; p < e; p += 256) {
        const n = Math.min(256, e - p);
        await r.readPages(p, n, buf);
        for (let k = 0; k < n; k++) out.set(p + k, createHash('sha1').update(buf.subarray(k * PAGE, (k + 1) * PAGE)).digest('hex'));
      }
    }
  } finally {
    await r.close();
  }
  return out;
}

function expectSame(label: string, got: Map<number, string>, ref: Map<number, string>, m: Uint8Array): void {
  const bad: string[] = [];
  let n = 0;
  for (let p = 0; p < m.length; p++) {
    if (!m[p]) continue;
    n++;
    if (got.get(p) !== ref.get(p)) bad.push(`${hexPfn(p)}: ${got.get(p)} vs ${ref.get(p)}`);
  }
  expect(bad.slice(0, 3), `${label}: ${bad.length} of ${n} pages differ`).toEqual([]);
  expect(n).toBeGreaterThan(1000);
}

describe.runIf(ok).each(CI_GUESTS.map((n) => [n]))('%s', (name) => {
  let g: Guest;
  let inElf: Uint8Array;
  let ref: Map<number, string>;
  beforeAll(() => {
    g = loadGuest(name);
  });

  it("QEMU's ELF: drgn reads every page QEMU dumped", async () => {
    inElf = await presentMap(g.elf);
    ref = peerSha('drgn', g.elf, inElf);
    const errors = [...ref.values()].filter((v) => v.startsWith('error'));
    expect(errors.slice(0, 3)).toEqual([]);
  });

  it("QEMU's kdump-zlib (flattened): dumpsieve reads it in place and libkdumpfile after makedumpfile -R, page-identical to the ELF", async () => {
    const inZlib = await presentMap(g.kdumpZlib, inElf.length);
    expect(Buffer.from(inZlib).equals(Buffer.from(inElf)), 'the same pfns').toBe(true);
    expectSame('dumpsieve, flattened in place', await dumpsieveSha(g.kdumpZlib, inElf), ref, inElf);
    const rebuilt = dir.file(`${name}.qemu.kdump`);
    const fd = openSync(g.kdumpZlib, 'r');
    try {
      execFileSync('makedumpfile', ['-R', rebuilt], { stdio: [fd, 'ignore', 'pipe'] });
    } finally {
      closeSync(fd);
    }
    expectSame('libkdumpfile, after makedumpfile -R', peerSha('libkdumpfile', rebuilt, inElf), ref, inElf);
  });

  for (const out of ['kdump', 'ELF'] as const) {
    it(`dumpsieve -d 31 ${out === 'kdump' ? `kdump (${CODEC_OF[name]})` : 'ELF'}: libkdumpfile and drgn read every page page-identical to QEMU's ELF`, async () => {
      const file = dir.file(`${name}.d31.${out}`);
      await filterDump({ input: g.elf, output: file, dumpLevel: 31, ...(out === 'kdump' ? { codec: CODEC_OF[name] } : { format: 'elf' as const }) });
      const held = await presentMap(file, inElf.length);
      for (let p = 0; p < held.length; p++) if (held[p] && !inElf[p]) throw new Error(`${out} holds ${hexPfn(p)}, which QEMU did not dump`);
      expectSame(`libkdumpfile on ${out}`, peerSha('libkdumpfile', file, held), ref, held);
      expectSame(`drgn on ${out}`, peerSha('drgn', file, held), ref, held);
    });
  }
});
