/**
 * The side-file formats: truth manifest, kpageflags table, oracle inputs
 * and kexec segment lists. Round trips, and strict rejection of broken
 * files with InputError naming the file and line.
 */
import { writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { formatKexecSegments, parseKexecSegments, readKexecSegments } from '../../src/formats/kexec-segments.js';
import { KpageflagsTable, KpageflagsTableWriter } from '../../src/formats/kpageflags/table.js';
import {
  formatBackedRanges,
  formatVirtioMem,
  formatXenHvmMemTypes,
  formatXenPvP2m,
  hvmMemTypeAt,
  lookupRun,
  p2mAt,
  parseBackedRanges,
  parseVirtioMem,
  parseXenHvmMemTypes,
  parseXenPvP2m,
  readXenHvmMemTypes,
  type XenPvP2m,
} from '../../src/ram/files.js';
import { formatTruthHeader, formatTruthRun, openTruth, readTruth, type TruthRun } from '../../src/synth/truth.js';
import { AtomicFileSink } from '../../src/io/sink.js';
import { writeTruth } from '../../src/synth/truth.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('formats'));
});
afterAll(async () => cleanup());

/** Expect an InputError naming `file` at `line` whose message matches `msg`. */
function expectInputError(fn: () => unknown, file: string, line: number | undefined, msg: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  const e = err as InputError;
  expect(e.file).toBe(file);
  expect(e.line).toBe(line);
  expect(e.message).toMatch(msg);
}

async function expectInputErrorAsync(p: Promise<unknown>, line: number | undefined, msg: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).line).toBe(line);
  expect((err as InputError).message).toMatch(msg);
}

describe('truth manifest', () => {
  const header = {
    scenario: 'plain',
    kernel: '5.10',
    osrelease: '5.10.0',
    seed: 3,
    size: 64 << 20,
    memoryModel: 'sparsemem' as const,
    physBase: 0,
    pageSize: 4096,
    faults: ['type-overlap'],
    maxPfn: 0x100,
    kernelMaxPfn: 0xf0,
    loads: [{ start: 1, end: 0x80 }],
  };
  const runs: TruthRun[] = [
    { start: 0, count: 1, cls: 'hole', ram: false, load: false, memmap: 'reserved', content: 'none' },
    { start: 1, count: 0x40, cls: 'free', ram: true, load: true, memmap: 'type-overlap', content: 'data', fault: 'type-overlap' },
    { start: 0x41, count: 0x3f, cls: 'offline', ram: false, load: true, memmap: 'offline', content: 'zero', owner: 'virtio-balloon', kpf: 'clear-offline' },
    { start: 0x80, count: 0x80, cls: 'hole', ram: false, load: false, memmap: 'none', content: 'none' },
  ];

  it('round-trips header and runs through a file', async () => {
    const file = join(dir, 'ok.truth');
    const sink = await AtomicFileSink.create(file);
    await writeTruth(sink, header, runs);
    await sink.commit();
    const t = await readTruth(file);
    expect(t.header).toEqual({ ...header, runs: runs.length });
    expect(t.runs).toEqual(runs);
  });

  const good = (): string[] => [...formatTruthHeader(header, runs.length).trimEnd().split('\n'), ...runs.map(formatTruthRun), 'end'];
  const lineOf = (lines: string[], prefix: string): number => lines.findIndex((l) => l.startsWith(prefix)) + 1;

  it.each([
    ['a gap', (l: string[]) => l.splice(lineOf(l, '0x1 ') - 1, 1), /gap: pfns \[0x1, 0x41\) are not described/],
    ['an overlap', (l: string[]) => (l[lineOf(l, '0x41 ') - 1] = l[lineOf(l, '0x41 ') - 1]!.replace('0x41 0x3f', '0x40 0x40')), /overlaps or precedes/],
    ['an unknown class', (l: string[]) => (l[lineOf(l, '0x1 ') - 1] = l[lineOf(l, '0x1 ') - 1]!.replace(' free ', ' freeish ')), /unknown class/],
    ['a run past max-pfn', (l: string[]) => (l[lineOf(l, '0x80 ') - 1] = l[lineOf(l, '0x80 ') - 1]!.replace('0x80 0x80', '0x80 0x81')), /past max-pfn/],
    ['an unknown attribute', (l: string[]) => (l[lineOf(l, '0x1 ') - 1] += ' colour=red'), /unknown attribute/],
    ['content contradicting the image column', (l: string[]) => (l[lineOf(l, '0x0 ') - 1] = l[lineOf(l, '0x0 ') - 1]!.replace('noload', 'load')), /contradicts/],
    ['a bad number', (l: string[]) => (l[lineOf(l, '0x1 ') - 1] = l[lineOf(l, '0x1 ') - 1]!.replace('0x40', '0xg0')), /not a number/],
  ])('rejects %s with the line', async (_name, mutate, msg) => {
    const lines = good();
    mutate(lines);
    const file = join(dir, 'bad.truth');
    await writeFile(file, `${lines.join('\n')}\n`);
    // The broken line is the first one that differs from the good manifest.
    const g = good();
    let bad = lines.findIndex((l, i) => l !== g[i]) + 1;
    if (bad === 0) bad = lines.length;
    const t = await openTruth(file);
    const consume = async (): Promise<void> => {
      for await (const _ of t.runs()) void _;
    };
    const err = await consume().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).file).toBe(file);
    expect((err as InputError).line).toBe(bad);
    expect((err as InputError).message).toMatch(msg);
  });

  it('rejects a truncated manifest, a wrong magic and a missing header key', async () => {
    const file = join(dir, 'cut.truth');
    await writeFile(file, `${good().slice(0, -2).join('\n')}\n`);
    const t = await openTruth(file);
    await expectInputErrorAsync(
      (async () => {
        for await (const _ of t.runs()) void _;
      })(),
      good().length - 2,
      /truncated/,
    );
    await writeFile(file, 'dumpsieve-truth 2\n');
    await expectInputErrorAsync(openTruth(file), 1, /version '2'/);
    await writeFile(file, 'not a truth\n');
    await expectInputErrorAsync(openTruth(file), 1, /not a truth manifest/);
    const noSeed = good().filter((l) => !l.startsWith('seed '));
    await writeFile(file, `${noSeed.join('\n')}\n`);
    await expectInputErrorAsync(openTruth(file), lineOf(noSeed, 'runs '), /lacks 'seed'/);
  });

  it('refuses to write an attribute value the reader could not read back', () => {
    expect(() => formatTruthRun({ ...runs[0]!, owner: 'two words' })).toThrow(/space/);
  });
});

describe('kpageflags table', () => {
  it('writes windows in any order, keeps zero blocks sparse, reads windows back', async () => {
    const file = join(dir, 't.kpageflags');
    const n = 5000;
    const w = await KpageflagsTableWriter.create(file, n);
    const lo = new Uint32Array(n);
    const hi = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      // Entries 512..1535 are zero (two whole 4 KiB blocks).
      if (i >= 512 && i < 1536) continue;
      lo[i] = (i * 2654435761) >>> 0;
      hi[i] = i & 1;
    }
    await w.write(3000, 2000, lo, hi, 3000);
    await w.write(0, 3000, lo, hi, 0);
    await w.commit();
    const st = await stat(file);
    expect(st.size).toBe(n * 8);
    expect(st.blocks * 512).toBeLessThan(n * 8);
    const t = await KpageflagsTable.open(file);
    expect(t.entries).toBe(n);
    const rl = new Uint32Array(300);
    const rh = new Uint32Array(300);
    expect(await t.read(4900, 200, rl, rh, 100)).toBe(100);
    for (let i = 0; i < 100; i++) {
      expect(rl[100 + i]).toBe(lo[4900 + i]);
      expect(rh[100 + i]).toBe(hi[4900 + i]);
    }
    expect(await t.read(1000, 10, rl, rh)).toBe(10);
    expect([...rl.subarray(0, 10)]).toEqual(new Array(10).fill(0));
    expect(await t.read(6000, 10, rl, rh)).toBe(0);
    await t.close();
  });

  it('rejects a table that is not whole 8-byte entries', async () => {
    const file = join(dir, 'odd.kpageflags');
    await writeFile(file, Buffer.alloc(12));
    await expect(KpageflagsTable.open(file)).rejects.toThrow(/not a whole number of 8-byte entries/);
    await expect(KpageflagsTable.open(file)).rejects.toBeInstanceOf(InputError);
  });
});

describe('Xen HVM memory types', () => {
  const f = 'g.memtypes';
  it('round-trips and answers mmio_dm between runs', () => {
    const d = { runs: [{ start: 1, count: 0x9e, value: 'ram_rw' as const }, { start: 0xc0, count: 8, value: 'ram_ro' as const }, { start: 0x100, count: 0x100, value: 'ram_rw' as const }] };
    const back = parseXenHvmMemTypes(formatXenHvmMemTypes(d, 'a comment'), f);
    expect(back).toEqual(d);
    expect(hvmMemTypeAt(back, 0, 0x1000)).toEqual({ value: 'mmio_dm', count: 1 });
    expect(hvmMemTypeAt(back, 0x50, 0x1000)).toEqual({ value: 'ram_rw', count: 0x4f });
    expect(hvmMemTypeAt(back, 0x9f, 0x1000)).toEqual({ value: 'mmio_dm', count: 0x21 });
    expect(hvmMemTypeAt(back, 0xc2, 0xc4)).toEqual({ value: 'ram_ro', count: 2 });
    expect(hvmMemTypeAt(back, 0x300, 0x1000)).toEqual({ value: 'mmio_dm', count: 0xd00 });
  });

  it.each([
    ['dumpsieve-xen-hvm-memtypes 1\n0x10 0x10 ram_rw\n0x18 0x4 ram_rw\n', 3, /overlaps or precedes/],
    ['dumpsieve-xen-hvm-memtypes 1\n0x10 0x10 ram_rw\n0x8 0x4 ram_rw\n', 3, /overlaps or precedes/],
    ['dumpsieve-xen-hvm-memtypes 1\n# c\n0x10 0x10 ram_wx\n', 3, /not one of/],
    ['dumpsieve-xen-hvm-memtypes 1\n0x10 0 ram_rw\n', 2, /count 0/],
    ['dumpsieve-xen-hvm-memtypes 1\n0x10 0x10\n', 2, /expected 'START COUNT TYPE'/],
    ['dumpsieve-xen-hvm-memtypes 1\n0xffffffffffff 0x10 ram_rw\n', 2, /above the limit/],
    ['dumpsieve-xen-hvm-memtypes 2\n', 1, /version 2/],
    ['dumpsieve-backed-ranges 1\n', 1, /not a dumpsieve-xen-hvm-memtypes file/],
  ])('rejects %j at line %i', (text, line, msg) => {
    expectInputError(() => parseXenHvmMemTypes(text, f), f, line, msg);
  });

  it('names the file it could not read', async () => {
    await expect(readXenHvmMemTypes(join(dir, 'absent.memtypes'))).rejects.toThrow(/absent\.memtypes/);
  });
});

describe('Xen PV P2M', () => {
  const f = 'g.p2m';
  const d: XenPvP2m = {
    p2mSize: 0x1000,
    runs: [
      { start: 0, count: 1, value: { kind: 'identity' } },
      { start: 1, count: 0x9e, value: { kind: 'mfn', mfn: 0x12345 } },
      { start: 0x200, count: 0x10, value: { kind: 'invalid' } },
    ],
  };
  it('round-trips; unlisted pfns are invalid below p2m-size and identity above', () => {
    const back = parseXenPvP2m(formatXenPvP2m(d), f);
    expect(back).toEqual(d);
    expect(p2mAt(back, 0x10, 0x1000)).toEqual({ value: { kind: 'mfn', mfn: 0x12354 }, count: 0x8f });
    expect(p2mAt(back, 0xa0, 0x1000)).toEqual({ value: { kind: 'invalid' }, count: 0x160 });
    expect(p2mAt(back, 0x205, 0x1000).value).toEqual({ kind: 'invalid' });
    expect(p2mAt(back, 0x1000, 0x2000)).toEqual({ value: { kind: 'identity' }, count: 0x1000 });
  });
  it.each([
    ['dumpsieve-xen-pv-p2m 1\n0x0 0x1 identity\n', 2, /missing 'p2m-size N'/],
    ['dumpsieve-xen-pv-p2m 1\np2m-size 0x100\n0x0 0x200 invalid\n', 3, /past p2m-size/],
    ['dumpsieve-xen-pv-p2m 1\np2m-size 0x100\n0x0 0x10 mfn\n', 3, /START COUNT mfn MFN/],
    ['dumpsieve-xen-pv-p2m 1\np2m-size 0x100\n0x0 0x10 foreign\n', 3, /not mfn, invalid or identity/],
    ['dumpsieve-xen-pv-p2m 1\np2m-size 0x100\np2m-size 0x100\n', 3, /twice/],
  ])('rejects %j at line %i', (text, line, msg) => {
    expectInputError(() => parseXenPvP2m(text, f), f, line, msg);
  });
});

describe('virtio-mem state', () => {
  const f = 'g.virtio-mem';
  it('round-trips', () => {
    const d = { devices: [{ id: 0, addr: 0x1_0000_0000, size: 0x4000_0000, blockSize: 0x20_0000, plugged: [{ addr: 0x1_0000_0000, size: 0x80_0000 }, { addr: 0x1_0100_0000, size: 0x20_0000 }] }] };
    expect(parseVirtioMem(formatVirtioMem(d), f)).toEqual(d);
  });
  it.each([
    ['dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x40000000 0x300000\n', 2, /power of two/],
    ['dumpsieve-virtio-mem 1\ndevice 0 0x100100000 0x40000000 0x200000\n', 2, /multiple of the block size/],
    ['dumpsieve-virtio-mem 1\nplugged 0 0x100000000 0x200000\n', 2, /undeclared device 0/],
    ['dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x40000000 0x200000\nplugged 0 0x140000000 0x200000\n', 3, /outside device 0/],
    ['dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x40000000 0x200000\nplugged 0 0x100000000 0x100000\n', 3, /whole blocks/],
    ['dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x40000000 0x200000\nplugged 0 0x100400000 0x200000\nplugged 0 0x100200000 0x200000\n', 4, /overlaps or precedes/],
    ['dumpsieve-virtio-mem 1\ndevice 0 0x100000000 0x40000000 0x200000\ndevice 1 0x120000000 0x40000000 0x200000\n', 3, /overlaps device 0/],
  ])('rejects %j at line %i', (text, line, msg) => {
    expectInputError(() => parseVirtioMem(text, f), f, line, msg);
  });
});

describe('backed ranges', () => {
  const f = 'g.backed';
  it('round-trips and looks up', () => {
    const d = { runs: [{ start: 1, count: 0x9e }, { start: 0x100, count: 0x100 }] };
    const back = parseBackedRanges(formatBackedRanges(d), f);
    expect(back).toEqual(d);
    const vr = back.runs.map((r) => ({ ...r, value: true }));
    expect(lookupRun(vr, 0x9f, 0x1000, false)).toEqual({ value: false, count: 0x61 });
    expect(lookupRun(vr, 0x180, 0x190, false)).toEqual({ value: true, count: 0x10 });
  });
  it('rejects unsorted runs with the line', () => {
    expectInputError(() => parseBackedRanges('dumpsieve-backed-ranges 1\n0x100 0x10\n\n0x1 0x2\n', f), f, 4, /overlaps or precedes/);
  });
});

describe('kexec segment lists', () => {
  const f = 'g.kexec';
  it('round-trips with labels', async () => {
    const segs = [
      { mem: 0x1400000, memsz: 0x800000, label: 'kernel' },
      { mem: 0x2000000, memsz: 0x1000, label: undefined },
    ];
    const text = formatKexecSegments(segs, 'from a test');
    expect(parseKexecSegments(text, f)).toEqual(segs);
    const file = join(dir, 'k.kexec');
    await writeFile(file, text);
    expect(await readKexecSegments(file)).toEqual(segs);
  });
  it.each([
    ['dumpsieve-kexec-segments 1\n0x1000 0x800\n', 2, /not page-aligned/],
    ['dumpsieve-kexec-segments 1\n0x1000 0x0\n', 2, /empty/],
    ['dumpsieve-kexec-segments 1\n0x2000 0x2000\n0x3000 0x1000\n', 3, /overlaps or precedes/],
    ['dumpsieve-kexec-segments 1\n0x2000 0x1000 bad/label\n', 2, /label/],
    ['dumpsieve-kexec-segments 1\n0x2000\n', 2, /MEM MEMSZ/],
    ['kexec 1\n', 1, /not a kexec segment list/],
    [`dumpsieve-kexec-segments 1\n${Array.from({ length: 17 }, (_, i) => `0x${((i + 1) * 0x1000).toString(16)} 0x1000`).join('\n')}\n`, 18, /KEXEC_SEGMENT_MAX/],
  ])('rejects %j at line %i', (text, line, msg) => {
    expectInputError(() => parseKexecSegments(text, f), f, line, msg);
  });
});
