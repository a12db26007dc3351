/**
 * A negative phys_base (a KASLR kernel running below its link address, as
 * Debian's 6.x guests often do: NUMBER(phys_base)=-455081984) through the
 * kdump writer: kdump_sub_header.phys_base is an unsigned long that
 * makedumpfile fills from NUMBER(phys_base), so the value is stored as its
 * 64-bit two's complement. The readers must agree on it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtomicFileSink } from '../../src/io/sink.js';
import { KdumpWriter } from '../../src/formats/kdump/writer.js';
import { openDump } from '../../src/formats/registry.js';
import { decodeSubHeader, KDUMP_SUB_HEADER_SIZE } from '../../src/formats/kdump/header.js';
import { noteBytes } from '../builders/elf-builder.js';
import { driveWriter, pageContent, TEST_VMCOREINFO, type DriveSpec } from '../formats/kdump/drive.js';
import { havePeers, PYTHON, readWithPeer } from './peers.js';

const PHYS_BASE = -455081984; // -0x1b200000
const TWOS = BigInt.asUintN(64, BigInt(PHYS_BASE)); // 0xffffffffe4e00000

const SPEC: DriveSpec = {
  maxPfn: 0x400,
  ram: [[0, 0x400]],
  kept: [[0, 0x300]],
  dumpLevel: 0,
  notes: noteBytes([
    { name: 'CORE', type: 1, desc: new Uint8Array(336) },
    { name: 'VMCOREINFO', type: 0, desc: Buffer.from(TEST_VMCOREINFO, 'latin1') },
  ]),
  vmcoreinfo: TEST_VMCOREINFO,
  utsname: { release: '6.1.0-dumpsieve-test' },
  physBase: PHYS_BASE,
};

let dir = '';
let dump = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dumpsieve-physbase-'));
  dump = join(dir, 'neg.kdump');
  const sink = await AtomicFileSink.create(dump);
  await driveWriter(new KdumpWriter(sink, 'zlib', { threads: 0 }), SPEC);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('negative phys_base in a kdump-compressed file', () => {
  it('is stored as the 64-bit two\'s complement (kdump_sub_header at block 1, offset 0)', async () => {
    const b = await readFile(dump);
    expect(b.readBigUInt64LE(4096)).toBe(TWOS);
  });

  it("dumpsieve decodes it back negative, and opens the file", async () => {
    const b = await readFile(dump);
    expect(decodeSubHeader(b.subarray(4096, 4096 + KDUMP_SUB_HEADER_SIZE), 6, dump, 4096).physBase).toBe(PHYS_BASE);
    const r = await openDump(dump);
    await r.close();
  });

  it('libkdumpfile takes it as linux.phys_base and reads every page', () => {
    if (!havePeers('negative phys_base × libkdumpfile', 'libkdumpfile')) return;
    const script = 'import sys, kdumpfile\nk = kdumpfile.kdumpfile(sys.argv[1])\nprint(int(k.attr["linux.phys_base"]))';
    const r = spawnSync(PYTHON, ['-c', script, dump], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(BigInt.asUintN(64, BigInt(r.stdout.trim()))).toBe(TWOS);
    checkPages('libkdumpfile');
  });

  it('drgn opens it and reads every page', () => {
    if (!havePeers('negative phys_base × drgn', 'drgn')) return;
    checkPages('drgn');
  });

  it('makedumpfile reads the same phys_base from the sub-header', () => {
    if (!havePeers('negative phys_base × makedumpfile', 'makedumpfile')) return;
    // -D prints the kdump sub-header before anything else is needed; the
    // re-filter itself stops later for want of a mem_map in this tiny file.
    const r = spawnSync('makedumpfile', ['-D', '-f', '-d', '31', dump, join(dir, 'refiltered')], { encoding: 'utf8' });
    const m = `${r.stdout}${r.stderr}`.match(/phys_base\s*:\s*0x([0-9a-f]+)/);
    expect(m, `${r.stdout}${r.stderr}`).not.toBeNull();
    expect(BigInt(`0x${m![1]}`)).toBe(TWOS);
  });
});

function checkPages(reader: 'libkdumpfile' | 'drgn'): void {
  const res = readWithPeer(reader, dump, [[0, 0x300]]);
  for (let p = 0; p < 0x300; p++) {
    expect(res.pages.get(p), `pfn ${p}`).toEqual({ ok: true, sha1: createHash('sha1').update(pageContent(SPEC, p)).digest('hex') });
  }
}
