/**
 * Split sets (makedumpfile --split) read as one dump, and reassembled.
 * The parts come from the test builder, which writes them the way
 * makedumpfile does (test/builders/kdump-builder.ts `part`); the whole
 * dump the same builder writes is the expectation, byte for byte.
 * makedumpfile-made sets are tested in test/interop/split-stream.test.ts.
 */
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../cli/run.js';
import { openInput } from '../../src/pipeline/input.js';
import { reassembleDump } from '../../src/pipeline/reassemble.js';
import { filterDump } from '../../src/pipeline/filter.js';
import { inspectDump } from '../../src/pipeline/info.js';
import { PfnState } from '../../src/formats/types.js';
import { buildElfCore, taggedPage } from '../builders/elf-builder.js';
import { buildKdump, type KdumpSpec } from '../builders/kdump-builder.js';
import { errorOf } from '../helpers/errors.js';
import { makeGuest, presentPfns, tempDir, type TempDir } from '../helpers/guests.js';

const PS = 4096;
const VMCI = 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\nNUMBER(pgtable_l5_enabled)=0\n';

/** A dump of 5000 pfns: RAM [0, 4800), about a third dumped, some of them zero pages. */
function wholeSpec(extra: Partial<KdumpSpec> = {}): KdumpSpec {
  const pages = [];
  for (let pfn = 1; pfn < 4800; pfn++) {
    if (pfn % 3 === 0) continue;
    if ((pfn * 7919) % 11 < 6) continue;
    pages.push(pfn % 17 === 0 ? { pfn, sharedZero: true } : { pfn, codec: pfn % 5 === 0 ? ('none' as const) : undefined });
  }
  return { maxPfn: 5000, ram: [[0, 4800]], codec: 'zlib', dumpLevel: 1, vmcoreinfo: VMCI, pages, ...extra };
}

const BOUNDS = [0, 1234, 1235, 3001, 5000];

let dir: TempDir;
let whole: string;
let parts: string[];
beforeAll(async () => {
  dir = await tempDir('dumpsieve-split-');
  whole = dir.file('whole.kdump');
  await writeFile(whole, buildKdump(wholeSpec()));
  parts = [];
  for (let i = 0; i + 1 < BOUNDS.length; i++) {
    const p = dir.file(`part${i}`);
    await writeFile(p, buildKdump(wholeSpec({ part: { start: BOUNDS[i]!, end: BOUNDS[i + 1]! } })));
    parts.push(p);
  }
});
afterAll(() => dir.remove());

async function states(input: string | string[]): Promise<{ st: Uint8Array; pages: Buffer }> {
  const r = await openInput(input);
  try {
    const st = new Uint8Array(r.info.maxPfn);
    await r.pfnStates(0, r.info.maxPfn, st);
    const present: number[] = [];
    st.forEach((s, p) => s === PfnState.PRESENT && present.push(p));
    const pages = Buffer.alloc(present.length * PS);
    // Runs across part boundaries in one call where they are contiguous.
    let k = 0;
    while (k < present.length) {
      let j = k + 1;
      while (j < present.length && present[j] === present[j - 1]! + 1) j++;
      await r.readPages(present[k]!, j - k, pages, k * PS);
      k = j;
    }
    return { st, pages };
  } finally {
    await r.close();
  }
}

describe('a split set read as one dump', () => {
  it('the parts, in any order, read as the whole dump (pages across part boundaries too)', async () => {
    const want = await states(whole);
    const got = await states([parts[3]!, parts[1]!, parts[0]!, parts[2]!]);
    expect(Buffer.compare(Buffer.from(got.st), Buffer.from(want.st))).toBe(0);
    expect(got.pages.equals(want.pages)).toBe(true);
    const r = await openInput(parts);
    expect(r.info.parts).toEqual(parts.map((file, i) => ({ file, startPfn: BOUNDS[i], endPfn: BOUNDS[i + 1], bytes: expect.any(Number) as number })));
    expect(r.info.details?.['dumped pages']).toBe(wholeSpec().pages.length);
    // readPhys across a part boundary with data on both sides.
    const at = BOUNDS.slice(1, -1).find((x) => want.st[x - 1] === PfnState.PRESENT && want.st[x] === PfnState.PRESENT)!;
    expect(at).toBeDefined();
    const b = new Uint8Array(PS);
    const w = await openInput(whole);
    const a = new Uint8Array(PS);
    await r.readPhys(at * PS - 100, PS, b);
    await w.readPhys(at * PS - 100, PS, a);
    expect(b).toEqual(a);
    await r.close();
    await w.close();
  });

  it('header_version 5 parts (native start_pfn/end_pfn) read the same', async () => {
    const v5 = [];
    for (let i = 0; i + 1 < BOUNDS.length; i++) {
      const p = dir.file(`v5-part${i}`);
      await writeFile(p, buildKdump(wholeSpec({ headerVersion: 5, part: { start: BOUNDS[i]!, end: BOUNDS[i + 1]! } })));
      v5.push(p);
    }
    const w5 = dir.file('v5-whole');
    await writeFile(w5, buildKdump(wholeSpec({ headerVersion: 5 })));
    const want = await states(w5);
    const got = await states(v5);
    expect(got.pages.equals(want.pages)).toBe(true);
  });

  it('info and filter on the parts give what they give on the whole dump', async () => {
    const a = await inspectDump(parts);
    const b = await inspectDump(whole);
    expect([a.ramPages, a.absentPages, a.maxPfn]).toEqual([b.ramPages, b.absentPages, b.maxPfn]);
    expect(a.parts).toHaveLength(4);
    for (const [input, out] of [[parts, dir.file('from-parts.elf')], [whole, dir.file('from-whole.elf')]] as const) {
      await filterDump({ input, output: out, format: 'elf', dumpLevel: 0 });
    }
    expect((await readFile(dir.file('from-parts.elf'))).equals(await readFile(dir.file('from-whole.elf')))).toBe(true);
  });
});

describe('split sets that are not whole: one line naming the part, exit 1', () => {
  it('a part missing', async () => {
    const e = await errorOf(openInput([parts[0]!, parts[1]!, parts[3]!]));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.message).toBe(`${parts[3]}: offset 0x1050: this part holds pfns [0xbb9, 0x1388), but no part given holds pfns [0x4d3, 0xbb9): a part of the split set is missing`);
    const last = await errorOf(openInput(parts.slice(0, 3)));
    expect(last.message).toBe(`${parts[2]}: offset 0x1050: the parts given end at pfn 0xbb9, but max_mapnr is 0x1388: a part of the split set is missing`);
    const first = await errorOf(openInput(parts.slice(1)));
    expect(first.message).toMatch(/no part given holds pfns \[0x0, 0x4d2\): a part of the split set is missing$/);
  });

  it('a part given twice', async () => {
    const e = await errorOf(openInput([...parts, parts[1]!]));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.message).toBe(`${parts[1]}: offset 0x1050: given twice (pfns [0x4d2, 0x4d3))`);
  });

  it('parts that do not belong together', async () => {
    const other = dir.file('other-part1');
    await writeFile(other, buildKdump(wholeSpec({ timestamp: 1700000001, part: { start: BOUNDS[1]!, end: BOUNDS[2]! } })));
    const e = await errorOf(openInput([parts[0]!, other, parts[2]!, parts[3]!]));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.message).toBe(`${other}: offset 0x198: disk_dump_header differs from ${parts[0]}'s in timestamp: not a part of the same dump`);
    const lvl = dir.file('other-level');
    await writeFile(lvl, buildKdump(wholeSpec({ dumpLevel: 31, part: { start: BOUNDS[1]!, end: BOUNDS[2]! } })));
    const e2 = await errorOf(openInput([parts[0]!, lvl, parts[2]!, parts[3]!]));
    expect(e2.message).toBe(`${lvl}: offset 0x1008: dump_level is 31, ${parts[0]} says 1: not a part of the same dump`);
  });

  it('a whole dump or an ELF among the parts, and a lone part', async () => {
    const e = await errorOf(openInput([parts[0]!, whole]));
    expect(e.message).toBe(`${whole}: offset 0x100c: not a part of a split dump (its sub header says split = 0): give a split set, or one whole dump`);
    const elf = dir.file('x.elf');
    await writeFile(elf, buildElfCore({ segments: [{ paddr: 0, data: taggedPage(0) }] }));
    const e2 = await errorOf(openInput([parts[0]!, elf]));
    expect(e2.message).toBe(`${elf}: offset 0x0: a elf dump cannot be part of a split set (only kdump-compressed files are split)`);
    const lone = await errorOf(openInput(parts[1]!));
    expect(lone.message).toMatch(/one part of a split dump \(pfns \[0x4d2, 0x4d3\)\): name every part of the set/);
  });

  it('analyze and validate take the parts too', async () => {
    const flags = dir.file('zero.kpageflags');
    await writeFile(flags, new Uint8Array(5000 * 8));
    const a = await cli('analyze', '--json', '--flags', flags, ...parts);
    expect(a.code, a.stderr).toBe(0);
    const b = await cli('analyze', '--json', '--flags', flags, whole);
    const pick = (s: string): unknown => {
      const j = JSON.parse(s) as { ramPages: number; classes: unknown };
      return [j.ramPages, j.classes];
    };
    expect(pick(a.stdout)).toEqual(pick(b.stdout));
    expect((JSON.parse(a.stdout) as { ramPages: number }).ramPages).toBe(4800);
    const v = await cli('validate', ...parts);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.startsWith(`${parts.join(' ')} (kdump`)).toBe(true);
  });

  it('on the command line: exit 1, one line, nothing written', async () => {
    const r = await cli('filter', '-d', '0', parts[0]!, parts[2]!, dir.file('never.kdump'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/a part of the split set is missing/);
    expect((await readdir(dir.path)).filter((f) => f.includes('never'))).toEqual([]);
  });
});

describe('dumpsieve reassemble', () => {
  it('joins the parts into the whole dump, byte for byte (pages stored as they were)', async () => {
    const out = dir.file('joined.kdump');
    const rep = await reassembleDump({ parts: [parts[2]!, parts[0]!, parts[3]!, parts[1]!], output: out });
    expect((await readFile(out)).equals(await readFile(whole))).toBe(true);
    const spec = wholeSpec();
    expect(rep.pages).toBe(spec.pages.length);
    expect(rep.zeroPages).toBe(spec.pages.filter((p) => 'sharedZero' in p).length);
    expect(rep.parts.map((p) => p.file)).toEqual(parts);
  });

  it('carries eraseinfo of every part, and info shows it', async () => {
    const ps = [];
    for (let i = 0; i + 1 < BOUNDS.length; i++) {
      const p = dir.file(`erase-part${i}`);
      await writeFile(p, buildKdump(wholeSpec({ eraseinfo: i === 1 ? 'erase modules.secret size 64\n' : i === 3 ? 'erase jiffies size 8\n' : undefined, part: { start: BOUNDS[i]!, end: BOUNDS[i + 1]! } })));
      ps.push(p);
    }
    const out = dir.file('erase-joined.kdump');
    const rep = await reassembleDump({ parts: ps, output: out });
    expect(rep.eraseinfoBytes).toBe(50);
    const info = await inspectDump(out);
    expect(info.eraseinfo).toBe('erase modules.secret size 64\nerase jiffies size 8\n');
    const r = await cli('info', out);
    expect(r.stdout).toMatch(/\neraseinfo:\n {2}erase modules\.secret size 64\n {2}erase jiffies size 8\n/);
    expect((await inspectDump(ps)).eraseinfo).toBe(info.eraseinfo);
  });

  it('the CLI: an existing output needs -f; an output that is one of the parts is refused even with -f', async () => {
    const out = dir.file('cli-joined.kdump');
    const ok = await cli('reassemble', out, ...parts);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/^.*cli-joined\.kdump: [\d,]+ pages \([\d,]+ zero\) from 4 parts/);
    const again = await cli('reassemble', out, ...parts);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`dumpsieve: ${out} exists (use -f to overwrite)\n`);
    const before = await readFile(parts[0]!);
    const self = await cli('reassemble', '-f', parts[0]!, ...parts);
    expect(self.code).toBe(2);
    expect(self.stderr).toBe(`dumpsieve: ${parts[0]}: the output is the split part ${parts[0]}\n`);
    expect((await readFile(parts[0]!)).equals(before)).toBe(true);
    const missing = await cli('reassemble', dir.file('x.kdump'), parts[0]!, parts[1]!);
    expect(missing.code).toBe(1);
    expect((await readdir(dir.path)).filter((f) => f.startsWith('x.kdump') || f.startsWith('.x.kdump'))).toEqual([]);
  });
});

describe('pages excluded in the input stay excluded, as absent', () => {
  let guest: string;
  let first: string;
  beforeAll(async () => {
    guest = await makeGuest(dir, 'guest.vmcore', { scenario: 'xen-hvm-balloon', size: 48 << 20, seed: 4, kernel: '5.10' });
    first = dir.file('guest.d31.kdump');
    await filterDump({ input: guest, output: first, dumpLevel: 31, codec: 'zlib' });
  }, 120_000);

  for (const level of [0, 1, 31]) {
    it(`re-filtering at -d ${level} writes none of them and reports them as absent`, async () => {
      const out = dir.file(`guest.again${level}.kdump`);
      const rep = await filterDump({ input: first, output: out, dumpLevel: level, codec: 'zlib' });
      const inFirst = await presentPfns(first);
      const ram = await openInput(first);
      const st = new Uint8Array(ram.info.maxPfn);
      await ram.pfnStates(0, ram.info.maxPfn, st);
      await ram.close();
      const absent = st.reduce((n, s) => n + (s === PfnState.ABSENT ? 1 : 0), 0);
      expect(absent).toBeGreaterThan(0);
      expect(rep.pages.absent).toBe(absent);
      const again = await presentPfns(out);
      for (let p = 0; p < again.length; p++) if (again[p]) expect(inFirst[p], `pfn ${p}`).toBe(1);
      await rm(out);
    });
  }

  it('through a split set too: RAM the parts hold no data for is absent', async () => {
    const out = dir.file('parts.d0.kdump');
    const rep = await filterDump({ input: parts, output: out, dumpLevel: 0 });
    const spec = wholeSpec();
    expect(rep.pages.absent).toBe(4800 - spec.pages.length);
    const got = await presentPfns(out);
    const want = new Set(spec.pages.map((p) => p.pfn));
    for (let p = 0; p < got.length; p++) expect(got[p] === 1, `pfn ${p}`).toBe(want.has(p));
  });
});
