/**
 * Real dumps dumpsieve cannot classify: one clear line naming what is
 * missing, exit 1, nothing left behind — and `filter -d 0` still copies
 * them, page for page.
 *
 * - early.elf: QEMU's dump of the 6.1 guest taken before the guest loaded
 *   qemu_fw_cfg, i.e. before it handed QEMU its VMCOREINFO: a real dump
 *   without the note, as from QEMU without -device vmcoreinfo.
 * - copies of a real dump whose VMCOREINFO describes a layout dumpsieve
 *   does not know (no mem_section nor mem_map; a pgtable_l5_enabled that is
 *   neither 0 nor 1), edited in place, same length.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { copyFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { main } from '../../src/cli/main.js';
import { openDump } from '../../src/formats/registry.js';
import { havePeers, readWithPeer } from '../interop/peers.js';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { hexPfn, loadGuest, presentMap, runsOf, type Guest } from './real.js';

const GUEST = '6.1-balloon-l5';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...argv: string[]): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  const code = await main(argv, { stdout: out, stderr: err, stderrIsTTY: false });
  return { code, stdout: Buffer.concat(o).toString(), stderr: Buffer.concat(e).toString() };
}

let dir: TempDir;
let g: Guest;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-real-bad-');
  g = loadGuest(GUEST);
});
afterAll(() => dir?.remove());

/** A copy of `elf` with `from` replaced by `to` (same length) in its VMCOREINFO note. */
function editedCopy(elf: string, name: string, from: string, to: string): string {
  expect(to.length).toBe(from.length);
  const out = dir.file(name);
  copyFileSync(elf, out);
  const head = Buffer.alloc(1 << 16);
  const fd = openSync(out, 'r+');
  try {
    readSync(fd, head, 0, head.length, 0);
    const at = head.indexOf(from, 0, 'latin1');
    expect(at, `${from} in the first 64 KiB`).toBeGreaterThan(0);
    writeSync(fd, Buffer.from(to, 'latin1'), 0, to.length, at);
  } finally {
    closeSync(fd);
  }
  return out;
}

async function expectOneLine(r: Run, pattern: RegExp): Promise<void> {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  // Nothing left behind.
  expect((await readdir(dir.path)).filter((f) => f.startsWith('out-'))).toEqual([]);
}

/**
 * -d 0 copies every page of the input: same pfns, same bytes (libkdumpfile
 * reads both; drgn refuses a QEMU dump without VMCOREINFO outright).
 */
async function expectCopy(input: string): Promise<void> {
  const out = dir.file('copy.kdump');
  const r = await cli('filter', '-f', '-d', '0', '-l', input, out);
  expect(r.code, r.stderr).toBe(0);
  const a = await presentMap(input);
  const b = await presentMap(out, a.length);
  expect(Buffer.from(b).equals(Buffer.from(a)), 'the copy holds the same pfns').toBe(true);
  if (!havePeers('real bad inputs × libkdumpfile', 'libkdumpfile')) return;
  // Every 16th run of 64 pages: enough to catch a shifted or misplaced page.
  const sample = new Uint8Array(a.length);
  runsOf(a).forEach(([s, e]) => {
    for (let p = s; p < e; p += 1024) sample.fill(1, p, Math.min(e, p + 64));
  });
  const ref = readWithPeer('libkdumpfile', input, runsOf(sample)).pages;
  const got = readWithPeer('libkdumpfile', out, runsOf(sample)).pages;
  let n = 0;
  for (const [pfn, v] of ref) {
    expect(v.ok, hexPfn(pfn)).toBe(true);
    expect(got.get(pfn), hexPfn(pfn)).toEqual(v);
    n++;
  }
  expect(n).toBeGreaterThan(1000);
}

describe('a real dump without VMCOREINFO (taken before the guest handed it to QEMU)', () => {
  it('info says there is no VMCOREINFO', async () => {
    const r = await cli('info', g.early!);
    expect(r.code).toBe(0);
    const d = await openDump(g.early!);
    expect(d.info.vmcoreinfo).toBeUndefined();
    await d.close();
  });

  it('filter -d 31: one line naming the missing note', async () => {
    await expectOneLine(await cli('filter', '-d', '31', g.early!, dir.file('out-early')), /early\.elf.*no VMCOREINFO/);
  });

  it('filter -d 0 copies it page for page', async () => {
    await expectCopy(g.early!);
  });
});

describe('real dumps whose VMCOREINFO describes an unknown layout', () => {
  const cases = [
    { name: 'no-memmap.elf', from: 'SYMBOL(mem_section)=', to: 'SYMBOL(mem_sectiox)=', says: /SYMBOL\(mem_section\) or SYMBOL\(mem_map\)/ },
    { name: 'l5-2.elf', from: 'NUMBER(pgtable_l5_enabled)=1', to: 'NUMBER(pgtable_l5_enabled)=2', says: /pgtable_l5_enabled\) is 2/ },
  ];
  for (const c of cases) {
    it(`${c.to}: filter -d 31 names what it cannot use in one line; -d 0 still copies`, async () => {
      const vi = await openDump(g.elf);
      const l5 = vi.info.vmcoreinfo?.number('pgtable_l5_enabled');
      await vi.close();
      const from = c.from.includes('pgtable_l5_enabled') ? `NUMBER(pgtable_l5_enabled)=${l5}` : c.from;
      const input = editedCopy(g.elf, c.name, from, c.to);
      await expectOneLine(await cli('filter', '-d', '31', input, dir.file('out-bad')), c.says);
      await expectCopy(input);
    });
  }
});
