/**
 * Mutation fuzzing of every reader: corrupt bytes of valid files (headers
 * above all) and require that opening and reading either works or fails
 * with a DumpError — never another exception, never a hang. Seeded, so a
 * failure reproduces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from './rng.js';
import { readFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { DumpError } from '../../src/core/errors.js';
import { BufferSource } from '../../src/io/source.js';
import { openDumpSource } from '../../src/formats/registry.js';
import { filterDump } from '../../src/pipeline/filter.js';
import { VmcoreInfo } from '../../src/formats/vmcoreinfo.js';
import { MemMapFlagSource } from '../../src/classify/flagsource.js';
import { PropWindow } from '../../src/kernel/props.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';

/** More with DUMPSIEVE_FUZZ_ITERATIONS=N (seeds stay reproducible). */
const ITERATIONS = Number(process.env.DUMPSIEVE_FUZZ_ITERATIONS ?? 250);

let dir: TempDir;
const inputs: Record<string, Buffer> = {};

beforeAll(async () => {
  dir = await tempDir('dumpsieve-fuzz-');
  const img = await makeGuest(dir, 'g.vmcore', { scenario: 'virtio-balloon', size: 32 << 20, seed: 9, kernel: '6.1' });
  inputs.elf = await readFile(img);
  await filterDump({ input: img, output: dir.file('g.kdump'), dumpLevel: 31, codec: 'zlib' });
  inputs.kdump = await readFile(dir.file('g.kdump'));
  const s = createWriteStream(dir.file('g.flat'));
  await filterDump({ input: img, flattened: true, stdout: s, dumpLevel: 31, codec: 'lzo' });
  await new Promise<void>((resolve) => s.end(resolve));
  inputs.flat = await readFile(dir.file('g.flat'));
}, 60_000);
afterAll(() => dir.remove());


function mutate(src: Buffer, r: () => number, hot: Array<[number, number]>): Buffer {
  const b = Buffer.from(src);
  const n = 1 + Math.floor(r() * 8);
  for (let k = 0; k < n; k++) {
    // Mostly in the hot ranges (headers, notes), sometimes anywhere.
    const h = hot[Math.floor(r() * hot.length)]!;
    const at = r() < 0.85 ? h[0] + Math.floor(r() * (h[1] - h[0])) : Math.floor(r() * b.length);
    if (at >= b.length) continue;
    const kind = r();
    if (kind < 0.5) b[at] = Math.floor(r() * 256);
    else if (kind < 0.8) b[at] = (b[at]! ^ (1 << Math.floor(r() * 8))) & 0xff;
    else b.fill(r() < 0.5 ? 0 : 0xff, at, Math.min(b.length, at + 1 + Math.floor(r() * 16)));
  }
  if (r() < 0.1) return b.subarray(0, Math.floor(r() * b.length));
  return b;
}

async function exercise(bytes: Buffer): Promise<void> {
  const reader = await openDumpSource(new BufferSource(bytes, 'fuzz'));
  try {
    const max = Math.min(reader.info.maxPfn, 1 << 20);
    const st = new Uint8Array(4096);
    const page = new Uint8Array(reader.info.pageSize * 4);
    let reads = 0;
    for (let w = 0; w < max && reads < 64; w += st.length) {
      const n = Math.min(st.length, max - w);
      await reader.pfnStates(w, n, st);
      for (let i = 0; i < n && reads < 64; i += 97) {
        if (st[i] === 2) {
          await reader.readPages(w + i, 1, page).catch((e: unknown) => {
            if (!(e instanceof DumpError)) throw e;
          });
          reads++;
        }
      }
    }
    const vi = reader.info.vmcoreinfo;
    if (vi instanceof VmcoreInfo) {
      const mm = await MemMapFlagSource.open(reader).catch((e: unknown) => {
        if (!(e instanceof DumpError)) throw e;
        return undefined;
      });
      if (mm) {
        const win = new PropWindow(32768);
        win.reset(0, Math.min(32768, reader.info.maxPfn));
        await mm.fill(win);
      }
    }
  } finally {
    await reader.close();
  }
}

describe.each(['elf', 'kdump', 'flat'])('mutated %s input', (kind) => {
  it('opens and reads, or fails with a DumpError', async () => {
    const src = inputs[kind]!;
    // ELF: header, program headers, notes; kdump: disk_dump_header, sub-header
    // and notes, the first descriptors; flattened: its header and the first records.
    const hot: Array<[number, number]> =
      kind === 'elf' ? [[0, 0x1000]] : kind === 'kdump' ? [[0, 464], [4096, 4096 + 104 + 0x600], [0x4000, 0x4400]] : [[0, 48], [4096, 4096 + 64 + 600]];
    let failures = 0;
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const seed = 0x5eed0000 + iter + (kind === 'elf' ? 0 : kind === 'kdump' ? 1000 : 2000);
      const bytes = mutate(src, rng(seed), hot);
      try {
        await exercise(bytes);
      } catch (err) {
        if (!(err instanceof DumpError)) {
          throw new Error(`seed 0x${seed.toString(16)}: ${(err as Error)?.stack ?? String(err)}`);
        }
        expect(err.message.split('\n').length, `seed 0x${seed.toString(16)}: ${JSON.stringify(err.message)}`).toBe(1);
        failures++;
      }
    }
    // The mutations do reach the parsers' checks.
    expect(failures).toBeGreaterThan(10);
  }, 120_000);
});
