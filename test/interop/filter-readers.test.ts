/**
 * Real readers on dumpsieve filter output: libkdumpfile and drgn read
 * every kept page byte-identical to the input and report excluded pages
 * as absent, for the four codecs and ELF; makedumpfile -R rebuilds the
 * flattened stream byte-identical to the plain file; makedumpfile accepts
 * the kdump output (zlib, lzo) as re-filtering input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { filterDump } from '../../src/pipeline/filter.js';
import { readReasonsMap } from '../../src/pipeline/reasons-map.js';
import { Reason } from '../../src/classify/reasons.js';
import { openDump } from '../../src/formats/registry.js';
import { havePeers, readWithPeer } from './peers.js';
import { makeGuest, presentPfns, tempDir, type TempDir } from '../helpers/guests.js';

const okReaders = havePeers('filter output read by libkdumpfile and drgn', 'libkdumpfile', 'drgn');
const okMdf = havePeers('filter output and makedumpfile', 'makedumpfile');

let dir: TempDir;
let image: string;
/** sha1 of every input page, by pfn. */
const inputSha = new Map<number, string>();
let maxPfn = 0;

beforeAll(async () => {
  dir = await tempDir('dumpsieve-readers-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'xen-hvm-balloon', size: 64 << 20, seed: 21, kernel: '5.10' });
  const r = await openDump(image);
  maxPfn = r.info.maxPfn;
  const st = new Uint8Array(maxPfn);
  await r.pfnStates(0, maxPfn, st);
  const page = new Uint8Array(4096);
  for (let p = 0; p < maxPfn; p++) {
    if (st[p] !== 2) continue;
    await r.readPages(p, 1, page);
    inputSha.set(p, createHash('sha1').update(page).digest('hex'));
  }
  await r.close();
}, 120_000);
afterAll(() => dir?.remove());

/** Pfns whose data the output holds: kept pages, and for kdump the zero pages (redirected to one shared zero page). */
async function keptSet(reasons: string, withZero: boolean): Promise<Set<number>> {
  const kept = new Set<number>();
  for await (const r of readReasonsMap(reasons)) {
    if (r.reason === Reason.KEPT || (withZero && r.reason === Reason.ZERO)) for (let p = r.start; p < r.end; p++) kept.add(p);
  }
  return kept;
}

describe.runIf(okReaders)('libkdumpfile and drgn read dumpsieve output', () => {
  const cases = [
    { name: 'kdump none', codec: 'none' as const, elf: false },
    { name: 'kdump zlib', codec: 'zlib' as const, elf: false },
    { name: 'kdump lzo', codec: 'lzo' as const, elf: false },
    { name: 'kdump snappy', codec: 'snappy' as const, elf: false },
    { name: 'kdump zstd', codec: 'zstd' as const, elf: false },
    { name: 'ELF', codec: 'none' as const, elf: true },
  ];
  for (const c of cases) {
    it(`${c.name}: kept pages identical, excluded pages absent`, async () => {
      const out = dir.file(`out-${c.name.replace(' ', '-')}`);
      const map = `${out}.reasons`;
      await filterDump({ input: image, output: out, dumpLevel: 31, codec: c.codec, format: c.elf ? 'elf' : 'kdump', reasonsFile: map });
      const kept = await keptSet(map, !c.elf);
      const segStarts = new Set<number>();
      if (c.elf) {
        const r = await openDump(out);
        for (const s of r.info.segments ?? []) segStarts.add(s.paddr / 4096);
        await r.close();
      }
      for (const reader of ['libkdumpfile', 'drgn'] as const) {
        const res = readWithPeer(reader, out, [[0, maxPfn]]);
        let same = 0;
        for (let p = 0; p < maxPfn; p++) {
          const got = res.pages.get(p)!;
          if (kept.has(p)) {
            expect(got.ok ? got.sha1 : got.error, `${reader} pfn 0x${p.toString(16)}`).toBe(inputSha.get(p));
            same++;
          } else if (got.ok) {
            // libkdumpfile 0.5.1 ELF bug: a missing page ending where a PT_LOAD starts reads as zeros.
            const knownBug = c.elf && reader === 'libkdumpfile' && segStarts.has(p + 1);
            expect(knownBug, `${reader} read excluded pfn 0x${p.toString(16)}`).toBe(true);
          } else {
            expect(['excluded', 'absent'], `${reader} pfn 0x${p.toString(16)}: ${got.error}`).toContain(got.error);
          }
        }
        expect(same).toBe(kept.size);
      }
    }, 180_000);
  }
});

describe.runIf(okMdf)('makedumpfile on dumpsieve output', () => {
  it('makedumpfile -R rebuilds the flattened stream byte-identical to the plain dump (kdump and ELF)', async () => {
    for (const elf of [false, true]) {
      const plain = dir.file(`plain-${elf}`);
      const flat = dir.file(`flat-${elf}`);
      const rebuilt = dir.file(`rebuilt-${elf}`);
      await filterDump({ input: image, output: plain, dumpLevel: 31, format: elf ? 'elf' : 'kdump', codec: elf ? 'none' : 'zlib' });
      const s = createWriteStream(flat);
      await filterDump({ input: image, flattened: true, stdout: s, dumpLevel: 31, format: elf ? 'elf' : 'kdump', codec: elf ? 'none' : 'zlib' });
      await new Promise<void>((resolve) => s.end(resolve));
      const r = spawnSync('makedumpfile', ['-R', rebuilt], { input: await readFile(flat), stdio: ['pipe', 'ignore', 'pipe'] });
      expect(r.status, r.stderr?.toString()).toBe(0);
      expect(Buffer.compare(await readFile(rebuilt), await readFile(plain))).toBe(0);
    }
  }, 120_000);

  for (const codec of ['zlib', 'lzo'] as const) {
    it(`makedumpfile re-filters the ${codec} kdump output`, async () => {
      const ours = dir.file(`ours-${codec}.kdump`);
      const again = dir.file(`again-${codec}.kdump`);
      await filterDump({ input: image, output: ours, dumpLevel: 31, codec });
      execFileSync('makedumpfile', [codec === 'zlib' ? '-c' : '-l', '-d', '31', ours, again], { stdio: 'pipe' });
      const a = await presentPfns(ours);
      const b = await presentPfns(again);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    }, 120_000);
  }
});
