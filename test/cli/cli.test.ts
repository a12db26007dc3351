import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { buildElfCore, taggedPage } from '../builders/elf-builder.js';
import { makeGuest, tempDir, type TempDir } from '../helpers/guests.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/built-cli.js';
import { BIN, cli } from './run.js';

let dir: TempDir;
let image: string;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-cli-');
  image = await makeGuest(dir, 'guest.vmcore', { scenario: 'virtio-balloon', size: 64 << 20, seed: 5, kernel: '6.1' });
});
afterAll(() => dir.remove());

/** Files in the temp folder other than the inputs (leftovers of a failed run). */
async function leftovers(): Promise<string[]> {
  return (await readdir(dir.path)).filter((f) => !f.startsWith('guest.vmcore') && !f.startsWith('bad'));
}

describe('bad input: one line naming file, offset and problem; exit 1; nothing left behind', () => {
  it('a file that is not ELF', async () => {
    const bad = dir.file('bad-notelf');
    await writeFile(bad, Buffer.from('PK\x03\x04 this is a zip file, not a vmcore'.padEnd(200, '.')));
    const r = await cli('filter', '-d', '31', bad, dir.file('out1'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`dumpsieve: ${bad}: offset 0x0: not a dump dumpsieve reads (ELF core, kdump-compressed, flattened): the first bytes are 50 4b 03 04 20 74 68 69 73 20 69 73 20 61 20 7a ("PK.. this is a z")\n`);
    expect(await leftovers()).toEqual([]);
  });

  it('a truncated ELF header', async () => {
    const bad = dir.file('bad-trunc');
    await writeFile(bad, (await readFile(image)).subarray(0, 40));
    const r = await cli('filter', bad, dir.file('out2'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^dumpsieve: ${bad}: offset 0x0: ELF header needs 64 bytes, file has 40\\n$`));
    expect(await leftovers()).toEqual([]);
  });

  it('a PT_LOAD past the end of the file', async () => {
    const bad = dir.file('bad-cut');
    const full = await readFile(image);
    await writeFile(bad, full.subarray(0, full.length >> 1));
    const r = await cli('filter', '-c', '-d', '31', bad, dir.file('out3'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dumpsieve: .*bad-cut: offset 0x[0-9a-f]+: program header \d+: PT_LOAD data \[0x[0-9a-f]+, 0x[0-9a-f]+\) extends past end of file \(0x[0-9a-f]+\)\n$/);
    expect(r.stderr.split('\n').length).toBe(2);
    expect(await leftovers()).toEqual([]);
  });

  it('no VMCOREINFO with -d above 1 (and -d 1 still works)', async () => {
    const bad = dir.file('bad-novmcoreinfo');
    const pages = new Uint8Array(4 * 4096);
    for (let i = 0; i < 4; i++) pages.set(taggedPage(0x100 + i), i * 4096);
    await writeFile(bad, buildElfCore({ notes: [{ name: 'CORE', type: 1, desc: new Uint8Array(336) }], segments: [{ paddr: 0x100000, data: pages }] }));
    const r = await cli('filter', '-d', '31', bad, dir.file('out4'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `dumpsieve: ${bad}: offset 0xb0: dump level 31 needs struct page data, but the image has no VMCOREINFO note (use -d 0 or 1, or --flags FILE.kpageflags)\n`,
    );
    expect(await leftovers()).toEqual([]);
    const ok = await cli('filter', '-q', '-d', '1', bad, dir.file('out4b'));
    expect(ok.code).toBe(0);
    expect(await leftovers()).toEqual(['out4b']);
  });
});

describe('usage errors: exit 2', () => {
  it('unknown option, -E with compression, existing output without -f', async () => {
    expect((await cli('filter', '--bogus', image, dir.file('x'))).code).toBe(2);
    const e = await cli('filter', '-E', '-c', image, dir.file('x'));
    expect(e.code).toBe(2);
    expect(e.stderr).toBe('dumpsieve: -E (ELF) cannot be combined with -c: ELF pages are not compressed\n');
    await writeFile(dir.file('exists'), 'x');
    const f = await cli('filter', image, dir.file('exists'));
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/exists \(use -f to overwrite\)/);
    expect((await cli('filter', '-d', '32', image, dir.file('y'))).stderr).toBe("dumpsieve: -d (--dump-level): '32' is not a whole number from 0 to 31\n");
  });
});

describe('filter reports', () => {
  it('prints the makedumpfile-style report on stderr, and JSON on stdout with --json', async () => {
    const r = await cli('filter', '-c', '-d', '31', image, dir.file('rep.kdump'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/Offline pages\s+:\s+[\d,]+/);
    expect(r.stderr).toMatch(/\(The number of pages is reduced to \d+%\.\)/);
    const j = await cli('filter', '-f', '--json', '-c', '-d', '31', image, dir.file('rep.kdump'));
    const rep = JSON.parse(j.stdout) as { pages: { excluded: Record<string, number>; kept: number; ram: number; excludedTotal: number } };
    expect(rep.pages.excluded.offline).toBeGreaterThan(0);
    expect(rep.pages.kept + rep.pages.excludedTotal).toBe(rep.pages.ram);
    expect(j.stderr).toBe('');
  });

  it('info describes the memory model and page-type era', async () => {
    const r = await cli('info', image);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Memory model: SPARSEMEM_EXTREME \+ VMEMMAP/);
    expect(r.stdout).toMatch(/offline\s+0xfffffeff/);
  });
});

describe('repeatable options do not swallow the positional arguments', () => {
  it('--ram-oracle and --protect before IN OUT', async () => {
    const r = await cli('filter', '-q', '-d', '31', '--ram-oracle', `ranges:${image}.backed`, '--protect', '0x1000000+2M', image, dir.file('rep-oracle.kdump'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('synth arguments: exit 2, nothing written', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown scenario', ['synth', 'nosuch', 'S1'], /unknown scenario 'nosuch'/],
    ['size not a whole number of pages', ['synth', 'plain', 'S2', '--size', '100001'], /not a whole number of .*pages|multiple of 4096/],
    ['a fault the scenario cannot host', ['synth', 'plain', 'S3', '--size', '64M', '--fault', 'kexec-over-balloon'], /kexec-over-balloon/],
    ['an unknown era', ['synth', 'plain', 'S4', '--kernel', '3.10'], /3\.10/],
  ];
  for (const [name, argv, re] of cases) {
    it(name, async () => {
      const out = dir.file(argv[2]!);
      const r = await cli(...argv.map((a) => (a === argv[2] ? out : a)));
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n').length).toBe(1);
      expect((await readdir(dir.path)).filter((f) => f.startsWith(argv[2]!))).toEqual([]);
    });
  }
});

describe('oracle arguments: exit 2, file and line named', () => {
  it('an unknown model, a malformed file', async () => {
    const a = await cli('filter', '--ram-oracle', 'hyperv:x', image, dir.file('o1'));
    expect(a.code).toBe(2);
    expect(a.stderr).toBe("dumpsieve: unknown --ram-oracle model 'hyperv' (known: none, ranges, xen-hvm, xen-pv, virtio-mem, module)\n");
    const bad = dir.file('bad-memtypes');
    await writeFile(bad, 'dumpsieve-xen-hvm-memtypes 1\n0x100 0x10 ram_rw\n0x0 0x10 ram_rw\n');
    const b = await cli('analyze', '--ram-oracle', `xen-hvm:${bad}`, image);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(new RegExp(`^dumpsieve: ${bad}: line 3: run at 0x0 overlaps or precedes the previous run`));
    const c = await cli('validate', '--ram-oracle', `ranges:${dir.file('missing-file')}`, image);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/missing-file: cannot read/);
  });
});

describe('page-flag tables and protected ranges in filter', () => {
  it('--flags classifies like mem_map, and works on an image without VMCOREINFO', async () => {
    const viaMemmap = await cli('filter', '-q', '--json', '-d', '31', image, dir.file('m.kdump'));
    const viaTable = await cli('filter', '-q', '--json', '-d', '31', '--flags', `${image}.kpageflags`, image, dir.file('t.kdump'));
    const a = JSON.parse(viaMemmap.stdout) as { pages: { excluded: Record<string, number>; kept: number } };
    const b = JSON.parse(viaTable.stdout) as { pages: { excluded: Record<string, number>; kept: number }; classification: { source: string } };
    expect(b.classification.source).toBe('kpageflags');
    expect(b.pages.excluded.offline).toBe(a.pages.excluded.offline);
    expect(b.pages.excluded.free).toBe(a.pages.excluded.free);
    expect(b.pages.kept).toBe(a.pages.kept);
    // Hide the VMCOREINFO note (rename it): mem_map is gone, the table still works.
    const img = await readFile(image);
    const at = img.indexOf(Buffer.from('VMCOREINFO\0'));
    img.write('VMCOREINFX', at, 'latin1');
    const blind = dir.file('bad-blind.vmcore');
    await writeFile(blind, img);
    const none = await cli('filter', '-d', '31', blind, dir.file('x.kdump'));
    expect(none.code).toBe(1);
    const withTable = await cli('filter', '-q', '--json', '-d', '31', '--flags', `${image}.kpageflags`, blind, dir.file('y.kdump'));
    expect(withTable.code).toBe(0);
    expect(JSON.parse(withTable.stdout).pages.excluded.offline).toBe(a.pages.excluded.offline);
  });

  it('--protect keeps pages a content rule would drop, never pages a status rule drops, and the report counts both', async () => {
    const map = dir.file('p.reasons');
    const r0 = await cli('filter', '-q', '--json', '-d', '31', '--reasons', map, image, dir.file('p0.kdump'));
    const before = JSON.parse(r0.stdout) as { pages: { excluded: Record<string, number> } };
    const text = await readFile(map, 'latin1');
    const runOf = (reason: string): [number, number] => {
      const m = new RegExp(`^0x([0-9a-f]+) 0x([0-9a-f]+) ${reason}$`, 'm').exec(text)!;
      return [Number.parseInt(m[1]!, 16), Number.parseInt(m[2]!, 16)];
    };
    const [os, oe] = runOf('offline');
    const [cs, ce] = runOf('cache');
    const range = (s: number, e: number): string => `0x${(s * 4096).toString(16)}-0x${(e * 4096).toString(16)}`;
    const r1 = await cli('filter', '-q', '--json', '-d', '31', '--protect', `${range(os, oe)},${range(cs, ce)}`, image, dir.file('p1.kdump'));
    type Pages = { excluded: Record<string, number>; protectedKept: Record<string, number>; protectedExcluded: Record<string, number> };
    const after = JSON.parse(r1.stdout) as { pages: Pages };
    expect(after.pages.protectedKept.cache).toBe(ce - cs);
    expect(after.pages.excluded.cache).toBe(before.pages.excluded.cache! - (ce - cs));
    expect(after.pages.protectedExcluded.offline).toBe(oe - os);
    expect(after.pages.excluded.offline).toBe(before.pages.excluded.offline);
  });
});

describe("makedumpfile's --message-level", () => {
  it('prints the report with bit 16 and not without it', async () => {
    const a = await cli('filter', '-f', '--message-level', '31', '-d', '31', image, dir.file('ml.kdump'));
    expect(a.stderr).toMatch(/Excluded pages/);
    const b = await cli('filter', '-f', '--message-level', '7', '-d', '31', image, dir.file('ml.kdump'));
    expect(b.code).toBe(0);
    expect(b.stderr).toBe('');
  });
});

describe('the bundle launcher', () => {
  let bundleDir: TempDir;
  beforeAll(async () => {
    bundleDir = await tempDir('dumpsieve-launcher-');
  });
  afterAll(() => bundleDir.remove());

  it('drops NODE_EXTRA_CA_CERTS, which node would parse before dumpsieve starts', () => {
    // The launcher under test (test-bundle.sh), else one built here.
    // (Built in a folder of its own: the other tests check this file's folder for leftovers.)
    let launcher = BIN !== undefined && !/\.m?js$/.test(BIN) ? BIN : undefined;
    if (!launcher) {
      execFileSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs'), '--out', bundleDir.file('bundle')], { stdio: 'pipe' });
      launcher = bundleDir.file('bundle/dumpsieve');
    }
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: dir.file('no-such-ca.pem') };
    // The control: node given the variable reads the file at start-up (and warns that it cannot).
    const plain = spawnSync(process.execPath, ['-e', '0'], { env, encoding: 'utf8' });
    expect(plain.stderr).toMatch(/extra certs/i);
    const r = spawnSync(launcher, ['--version'], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
