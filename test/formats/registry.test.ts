import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferSource, CountingSource } from '../../src/io/source.js';
import { openDump, openDumpSource, probeDump } from '../../src/formats/registry.js';
import { buildElfCore, taggedPage, vmcoreinfoNote } from '../builders/elf-builder.js';
import { buildKdump } from '../builders/kdump-builder.js';
import { buildFlat } from './flat/flat-builder.js';
import { errorOf } from '../helpers/errors.js';

const PS = 4096;

function elfImage(): Uint8Array {
  const data = new Uint8Array(3 * PS);
  for (let i = 0; i < 3; i++) data.set(taggedPage(2 + i), i * PS);
  return buildElfCore({ notes: [vmcoreinfoNote(['OSRELEASE=6.1.0', 'PAGESIZE=4096'])], segments: [{ paddr: 2 * PS, data }] });
}

function kdumpImage(): Uint8Array {
  return buildKdump({ maxPfn: 32, codec: 'zlib', vmcoreinfo: 'OSRELEASE=6.1.0\nPAGESIZE=4096\n', pages: [{ pfn: 2 }, { pfn: 3 }, { pfn: 9 }] });
}

/** Cut a plain file into flattened records, in a scrambled order. */
function flatten(plain: Uint8Array, piece = 1000): Uint8Array {
  const recs: Array<{ offset: number; data: Uint8Array }> = [];
  for (let o = 0; o < plain.length; o += piece) recs.push({ offset: o, data: plain.subarray(o, Math.min(plain.length, o + piece)) });
  const order = recs.map((_, i) => i).sort((a, b) => ((a * 7919) % recs.length) - ((b * 7919) % recs.length));
  return buildFlat(order.map((i) => recs[i]!));
}


describe('probeDump', () => {
  it('names each format from its first bytes and nothing else', () => {
    expect(probeDump(elfImage().subarray(0, 32))).toBe('elf');
    expect(probeDump(kdumpImage().subarray(0, 32))).toBe('kdump');
    expect(probeDump(Buffer.from('DISKDUMP'))).toBe('kdump');
    expect(probeDump(flatten(kdumpImage()).subarray(0, 32))).toBe('flattened');
    expect(probeDump(Buffer.from('PK\x03\x04 not a dump'))).toBeUndefined();
    for (let n = 0; n < 12; n++) expect(() => probeDump(kdumpImage().subarray(0, n))).not.toThrow();
    expect(probeDump(new Uint8Array(0))).toBeUndefined();
  });
});

describe('openDumpSource', () => {
  it('opens ELF and kdump files with the right reader', async () => {
    const elf = await openDumpSource(new BufferSource(elfImage(), 'v.elf'));
    expect(elf.info.format).toBe('elf');
    const kd = await openDumpSource(new BufferSource(kdumpImage(), 'v.kdump'));
    expect(kd.info.format).toBe('kdump');
    const b = new Uint8Array(PS);
    await kd.readPages(9, 1, b);
    expect(b).toEqual(taggedPage(9));
  });

  for (const kind of ['kdump', 'elf'] as const) {
    it(`reads a flattened ${kind} file in place, same pages as the plain file`, async () => {
      const plain = kind === 'kdump' ? kdumpImage() : elfImage();
      const flat = flatten(plain);
      const counting = new CountingSource(new BufferSource(flat, `v.${kind}.flat`));
      const r = await openDumpSource(counting);
      expect(r.info.format).toBe(`flattened-${kind}`);
      expect(r.info.fileSize).toBe(flat.length);
      expect(r.info.details?.['rebuilt size']).toBe(plain.length);
      expect(r.info.vmcoreinfo?.osrelease).toBe('6.1.0');
      const b = new Uint8Array(2 * PS);
      await r.readPages(2, 2, b);
      expect(b.subarray(0, PS)).toEqual(taggedPage(2));
      expect(b.subarray(PS)).toEqual(taggedPage(3));
      await r.close();
    });
  }

  it('says what the first bytes were when it knows no format', async () => {
    const e = await errorOf(openDumpSource(new BufferSource(Buffer.from('PK\x03\x04 zip file contents here'), 'a.zip')));
    expect(e.code).toBe('DUMP_UNSUPPORTED');
    expect(e.offset).toBe(0);
    expect(e.message).toMatch(/^a\.zip: offset 0x0: not a dump .*first bytes are 50 4b 03 04 20 7a 69 70/);
    expect(e.message).not.toContain('\n');
    const gz = await errorOf(openDumpSource(new BufferSource(Buffer.from([0x1f, 0x8b, 8, 0]), 'x.gz')));
    expect(gz.message).toMatch(/gzip/);
    const empty = await errorOf(openDumpSource(new BufferSource(new Uint8Array(0), 'empty')));
    expect(empty.message).toMatch(/the file is empty/);
  });

  it('refuses a flattened file that wraps neither format', async () => {
    const e = await errorOf(openDumpSource(new BufferSource(buildFlat([{ offset: 0, data: Buffer.from('hello world, not a dump') }]), 'h.flat')));
    expect(e.code).toBe('DUMP_UNSUPPORTED');
    expect(e.message).toMatch(/flattened file holding no ELF or kdump dump.*68 65 6c 6c 6f/);
  });

  it('passes reader errors through unchanged', async () => {
    const bad = kdumpImage();
    new DataView(bad.buffer, bad.byteOffset).setInt32(428, 0, true);
    expect(await errorOf(openDumpSource(new BufferSource(bad, 'bad')))).toMatchObject({ code: 'DUMP_CORRUPT', offset: 428 });
  });
});

describe('openDump', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dumpsieve-registry-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('opens files by path, flattened ones included', async () => {
    const p = join(dir, 'vmcore.flat');
    await writeFile(p, flatten(kdumpImage(), 333));
    const r = await openDump(p);
    expect(r.info.format).toBe('flattened-kdump');
    expect(r.info.file).toBe(p);
    const b = new Uint8Array(PS);
    await r.readPhys(3 * PS, PS, b);
    expect(b).toEqual(taggedPage(3));
    await r.close();
  });

  it('names the file in errors, including a missing one', async () => {
    const p = join(dir, 'junk');
    await writeFile(p, 'junk junk junk');
    expect((await errorOf(openDump(p))).message.startsWith(`${p}: offset 0x0: not a dump`)).toBe(true);
    const missing = await errorOf(openDump(join(dir, 'nope')));
    expect(missing.code).toBe('IO');
    expect(missing.message).toMatch(/ENOENT/);
  });
});
