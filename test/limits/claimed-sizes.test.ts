/**
 * Sizes that headers only claim: the work and memory a dump costs are
 * bounded by the file, not by what its headers say. Each case is named
 * after what the hostile file does; each checks the exit code, the one-line
 * message (file and offset), that nothing is left behind, and time or
 * memory where that is the point. Memory is measured on the built CLI in a
 * child process (test/helpers/built-cli.ts).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferSource } from '../../src/io/source.js';
import { ElfDumpReader, MAX_PHNUM, MAX_UNORDERED_EXTENTS } from '../../src/formats/elf/reader.js';
import { FlatSource } from '../../src/formats/flat/reader.js';
import { KdumpReader } from '../../src/formats/kdump/reader.js';
import { openDumpSource } from '../../src/formats/registry.js';
import { buildElfCore, taggedPage, vmcoreinfoNote } from '../builders/elf-builder.js';
import { buildKdump } from '../builders/kdump-builder.js';
import { buildFlat } from '../formats/flat/flat-builder.js';
import { errorOf } from '../helpers/errors.js';
import { runBuilt } from '../helpers/built-cli.js';
import { tempDir, type TempDir } from '../helpers/guests.js';

const PS = 4096;
let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-claims-');
});
afterAll(() => dir.remove());

/** Files in the temp folder other than `keep` (leftovers of a failed run). */
async function leftovers(...keep: string[]): Promise<string[]> {
  return (await readdir(dir.path)).filter((f) => !keep.includes(f));
}

/** The one line a failed run prints: `dumpsieve: FILE: offset 0xN: ...`. */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  return lines[0]!;
}

/**
 * An ELF core with `n` PT_LOADs of one page each, all pointing at one data
 * page, in ascending physical order (or descending), written in chunks.
 */
function writeManyPhdrs(path: string, n: number, order: 'ascending' | 'descending'): void {
  const fd = openSync(path, 'w');
  try {
    const phoff = 64;
    const shoff = phoff + n * 56;
    const dataOff = Math.ceil((shoff + 64) / PS) * PS;
    const eh = Buffer.alloc(64);
    eh.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    eh.writeUInt16LE(4, 16);
    eh.writeUInt16LE(62, 18);
    eh.writeUInt32LE(1, 20);
    eh.writeBigUInt64LE(BigInt(phoff), 32);
    eh.writeBigUInt64LE(BigInt(shoff), 40);
    eh.writeUInt16LE(64, 52);
    eh.writeUInt16LE(56, 54);
    eh.writeUInt16LE(0xffff, 56); // PN_XNUM
    eh.writeUInt16LE(64, 58);
    eh.writeUInt16LE(1, 60);
    writeSync(fd, eh);
    const CH = 1 << 16;
    const b = Buffer.alloc(CH * 56);
    for (let i0 = 0; i0 < n; i0 += CH) {
      const k = Math.min(CH, n - i0);
      b.fill(0);
      for (let j = 0; j < k; j++) {
        const i = i0 + j;
        const o = j * 56;
        const pfn = order === 'ascending' ? i : n - 1 - i;
        b.writeUInt32LE(1, o);
        b.writeUInt32LE(7, o + 4);
        b.writeBigUInt64LE(BigInt(dataOff), o + 8);
        b.writeBigUInt64LE(0xffff888000000000n + BigInt(pfn * PS), o + 16);
        b.writeBigUInt64LE(BigInt(pfn * PS), o + 24);
        b.writeBigUInt64LE(BigInt(PS), o + 32);
        b.writeBigUInt64LE(BigInt(PS), o + 40);
      }
      writeSync(fd, b, 0, k * 56, phoff + i0 * 56);
    }
    const sh = Buffer.alloc(64);
    sh.writeUInt32LE(n, 44); // sh_info: the real program header count
    writeSync(fd, sh, 0, 64, shoff);
    writeSync(fd, taggedPage(7), 0, PS, dataOff);
  } finally {
    closeSync(fd);
  }
}

describe('ELF headers that claim more than the file holds', () => {
  it('PT_LOAD at 2^51: refused at once, naming the program header', async () => {
    const img = buildElfCore({ segments: [{ paddr: 2 ** 51, vaddr: 0n, data: taggedPage(1) }] });
    const e = await errorOf(ElfDumpReader.open(new BufferSource(img, 'vmcore')));
    expect(e.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e.offset).toBe(64 + 56);
    expect(e.message).toMatch(/^vmcore: offset 0x78: program header 1: PT_LOAD ends at physical address 0x8000000001000 \(pfn 0x8000000001\), beyond the 0x100000000 pfns a file of \d+ bytes may describe$/);
    const file = dir.file('ptload-2-51');
    await writeFile(file, img);
    const r = runBuilt(['info', file]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(`dumpsieve: ${e.message.replace('vmcore', file)}`);
    expect(r.ms).toBeLessThan(5000);
    expect(await leftovers('ptload-2-51')).toEqual([]);
    await rm(file);
  });

  it('p_memsz tail of 2^50 bytes without data: refused', async () => {
    const img = buildElfCore({ segments: [{ paddr: 0, data: taggedPage(0), memsz: 2 ** 50 }] });
    const e = await errorOf(ElfDumpReader.open(new BufferSource(img, 'vmcore')));
    expect(e.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e.offset).toBe(64 + 56);
  });

  it('a sparse guest: a PT_LOAD at 8 TiB in a small file is read', async () => {
    const img = buildElfCore({ segments: [{ paddr: 0, data: taggedPage(0) }, { paddr: 2 ** 43, data: taggedPage(2 ** 31) }] });
    const r = await ElfDumpReader.open(new BufferSource(img, 'vmcore'));
    expect(r.info.maxPfn).toBe(2 ** 31 + 1);
    const p = new Uint8Array(PS);
    await r.readPages(2 ** 31, 1, p);
    expect(p).toEqual(taggedPage(2 ** 31));
  });

  it('PT_LOAD past the file: refused with the file range', async () => {
    const img = buildElfCore({ segments: [{ paddr: 0, filesz: 2 ** 40, offset: 0x2000 }] });
    const e = await errorOf(ElfDumpReader.open(new BufferSource(img, 'vmcore')));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.message).toMatch(/program header 1: PT_LOAD data \[0x2000, 0x10000002000\) extends past end of file/);
  });

  it('2^21 program headers the file cannot hold: refused before anything is read or allocated', async () => {
    // PN_XNUM with sh_info 2^21 in a file of a few hundred bytes.
    const img = Buffer.from(buildElfCore({ segments: [{ paddr: 0, data: taggedPage(0) }], xnum: true }));
    const shoff = Number(img.readBigUInt64LE(40));
    img.writeUInt32LE(MAX_PHNUM, shoff + 44);
    const e = await errorOf(ElfDumpReader.open(new BufferSource(img, 'vmcore')));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.message).toMatch(/^vmcore: offset 0x40: 2097152 program headers at 64 run past the end of the file/);
    img.writeUInt32LE(MAX_PHNUM + 1, shoff + 44);
    const e2 = await errorOf(ElfDumpReader.open(new BufferSource(img, 'vmcore')));
    expect(e2.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e2.message).toMatch(/program header count is 2097153, above the limit of 2097152/);
  });

  it('2^21 program headers in order: read in bounded memory (under 200 MB)', async () => {
    const file = dir.file('phdrs-2-21');
    writeManyPhdrs(file, MAX_PHNUM, 'ascending');
    const r = runBuilt(['info', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/RAM pages 2,097,152 \(8\.00 GiB\)/);
    expect(r.stdout).toMatch(/PT_LOAD segments: 2097152/);
    expect(r.maxRssMiB).toBeLessThan(200);
    await rm(file);
  }, 120_000);

  it('2^21 program headers out of order: one line, bounded memory', async () => {
    const file = dir.file('phdrs-2-21-desc');
    writeManyPhdrs(file, MAX_PHNUM, 'descending');
    const r = runBuilt(['info', file]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(
      new RegExp(`^dumpsieve: ${file}: offset 0x78: program header 1: PT_LOAD overlaps or precedes an earlier one, and out-of-order tables are resolved only up to ${MAX_UNORDERED_EXTENTS} ranges`),
    );
    expect(r.maxRssMiB).toBeLessThan(200);
    await rm(file);
  }, 120_000);

  it('out-of-order program headers below the limit are resolved (first one wins)', async () => {
    const a = new Uint8Array(2 * PS).fill(0x11);
    const b = new Uint8Array(3 * PS).fill(0x22);
    const img = buildElfCore({ segments: [{ paddr: 4 * PS, data: a }, { paddr: 3 * PS, data: b }] });
    const r = await ElfDumpReader.open(new BufferSource(img, 'vmcore'));
    const p = new Uint8Array(3 * PS);
    await r.readPages(3, 3, p);
    expect(p.subarray(0, PS).every((x) => x === 0x22)).toBe(true);
    expect(p.subarray(PS).every((x) => x === 0x11)).toBe(true);
  });
});

describe('kdump and flattened headers that claim more than the file holds', () => {
  const VMCI = 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\n';
  const small = () => buildKdump({ maxPfn: 64, vmcoreinfo: VMCI, pages: [1, 2, 3].map((pfn) => ({ pfn })), codec: 'zlib' });

  it('max_mapnr past the file: a 32-bit max_mapnr the bitmaps cannot cover', async () => {
    const b = buildKdump({ maxPfn: 64, headerVersion: 5, vmcoreinfo: VMCI, pages: [{ pfn: 1 }], header: { maxMapnr: 0xfffffffe } });
    const e = await errorOf(KdumpReader.open(new BufferSource(b, 'dump')));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.message).toMatch(/^dump: offset 0x1b4: bitmap_blocks 2 \(65536 bits\) cannot cover max_mapnr 4294967294$/);
  });

  it('max_mapnr past the file: bitmap_blocks claiming more than the file', async () => {
    const b = Buffer.from(small());
    b.writeUInt32LE(2 ** 17, 436); // bitmap_blocks: two bitmaps of 2^31 bits
    b.writeBigUInt64LE(2n ** 31n, PS + 96); // max_mapnr_64
    const e = await errorOf(KdumpReader.open(new BufferSource(b, 'dump')));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.offset).toBe(2 * PS);
  });

  it('max_mapnr past what a flattened file holds: bitmaps in a hole of the rebuilt file', async () => {
    // The headers of a dump claiming 2^38 pfns, with bitmaps and descriptors
    // that would be zeros in a sparse rebuilt file: one record far out.
    const b = Buffer.from(small());
    const blocks = 2 ** 38 / 8 / PS; // each bitmap
    b.writeUInt32LE(2 * blocks, 436);
    b.writeBigUInt64LE(2n ** 38n, PS + 96);
    b.writeUInt32LE(0xffffffff, 440);
    const flat = buildFlat([
      { offset: 0, data: b.subarray(0, 2 * PS) },
      { offset: (2 + 2 * blocks) * PS + 4096, data: new Uint8Array(8) },
    ]);
    const src = new BufferSource(flat, 'dump.flat');
    const t0 = performance.now();
    const e = await errorOf(openDumpSource(src));
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e.message).toMatch(/^dump\.flat: offset 0x1060: max_mapnr 0x4000000000 is beyond the 0x100000000 pfns a file of 8200 bytes may describe$/);
    expect((await FlatSource.open(src)).storedBytes).toBe(8200);
  });

  it('a flattened record size past the file: refused before anything is allocated', async () => {
    const flat = buildFlat([{ offset: 0, data: new Uint8Array(16), size: 2n ** 50n }], { end: false });
    const e = await errorOf(FlatSource.open(new BufferSource(flat, 'f')));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.message).toMatch(/flattened record of 1125899906842624 bytes runs past the end of the file/);
  });
});

describe('special files as inputs', () => {
  it('character device input: one line, not a regular file (exit 1)', () => {
    const r = runBuilt(['info', '/dev/zero']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe('dumpsieve: /dev/zero: not a regular file (a character device)');
    const f = runBuilt(['filter', '-d', '0', '/dev/null', dir.file('never')]);
    expect(f.code).toBe(1);
    expect(oneLine(f.stderr)).toBe('dumpsieve: /dev/null: not a regular file (a character device)');
  });

  it('directory input: one line, not a regular file (exit 1)', async () => {
    const r = runBuilt(['analyze', dir.path]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(`dumpsieve: ${dir.path}: not a regular file (a directory)`);
    expect(await leftovers()).toEqual([]);
  });
});

describe('side files: regular files only, read as bounded streams', () => {
  let image: string;
  beforeAll(async () => {
    image = dir.file('small.vmcore');
    await writeFile(image, buildElfCore({ notes: [vmcoreinfoNote(['OSRELEASE=5.10.0', 'PAGESIZE=4096'])], segments: [{ paddr: 0, data: taggedPage(0) }] }));
  });

  for (const kind of ['ranges', 'xen-hvm', 'xen-pv', 'virtio-mem']) {
    it(`oracle file /dev/zero (${kind}): one line, exit 2, nothing read`, () => {
      const r = runBuilt(['analyze', image, '--ram-oracle', `${kind}:/dev/zero`], { timeoutMs: 20_000 });
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toMatch(/^dumpsieve: \/dev\/zero: .* file: not a regular file \(a character device\)$/);
      expect(r.maxRssMiB).toBeLessThan(150);
    });
  }

  it('oracle file FIFO without a writer: one line, exit 2, never blocks', () => {
    const fifo = dir.file('oracle.fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    try {
      const r = runBuilt(['analyze', image, '--ram-oracle', `ranges:${fifo}`], { timeoutMs: 20_000 });
      expect(r.signal).toBeNull();
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toBe(`dumpsieve: ${fifo}: backed-ranges file: not a regular file (a FIFO)`);
    } finally {
      execFileSync('rm', ['-f', fifo]);
    }
  });

  it('kpageflags table FIFO and /dev/zero: one line, exit 2, never blocks', () => {
    const fifo = dir.file('flags.fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    try {
      for (const f of [fifo, '/dev/zero']) {
        const r = runBuilt(['filter', '-d', '0', '--flags', f, image, dir.file('out.kdump')], { timeoutMs: 20_000 });
        expect(r.code).toBe(2);
        expect(oneLine(r.stderr)).toMatch(new RegExp(`^dumpsieve: ${f}: kpageflags table: not a regular file \\(a (FIFO|character device)\\)$`));
      }
    } finally {
      execFileSync('rm', ['-f', fifo]);
    }
  });

  it('kexec segment list /dev/zero: one line, exit 2', () => {
    const r = runBuilt(['validate', image, '--kexec-segments', '/dev/zero'], { timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe('dumpsieve: /dev/zero: kexec segment list: not a regular file (a character device)');
  });

  it('a 300 MB oracle file is refused by its size before it is read', async () => {
    const big = dir.file('big.ranges');
    await writeFile(big, 'dumpsieve-backed-ranges 1\n0x0 0x10\n');
    await truncate(big, 300 << 20);
    const r = runBuilt(['analyze', image, '--ram-oracle', `ranges:${big}`]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(`dumpsieve: ${big}: backed-ranges file is 314572800 bytes, above the limit of 67108864`);
    expect(r.maxRssMiB).toBeLessThan(150);
    await rm(big);
  });

  it('a malformed oracle file stops at its first error: a 60 MB file costs one chunk', async () => {
    const bad = dir.file('bad.memtypes');
    // Line 3 is bad; 60 MB of well-formed runs follow it.
    const fd = openSync(bad, 'w');
    writeSync(fd, 'dumpsieve-xen-hvm-memtypes 1\n0x0 0x10 ram_rw\n0x10 0x10 ram_typo\n');
    const chunk = Buffer.from(Array.from({ length: 4096 }, (_, i) => `0x${(0x100 + i * 2).toString(16)} 0x1 ram_rw\n`).join(''));
    let start = 0x100 + 4096 * 2;
    for (let n = 0; n < (60 << 20) / chunk.length; n++) {
      writeSync(fd, chunk);
      start += 1;
    }
    closeSync(fd);
    const r = runBuilt(['analyze', image, '--ram-oracle', `xen-hvm:${bad}`]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(`dumpsieve: ${bad}: line 3: memory type 'ram_typo' is not one of ram_rw, ram_ro, mmio_dm, error`);
    expect(r.maxRssMiB).toBeLessThan(120);
    await rm(bad);
  });
});
