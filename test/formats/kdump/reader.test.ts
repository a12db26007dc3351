import { randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BufferSource, CountingSource } from '../../../src/io/source.js';
import { KdumpReader } from '../../../src/formats/kdump/reader.js';
import { PfnState } from '../../../src/formats/types.js';
import { noteBytes, taggedPage } from '../../builders/elf-builder.js';
import { buildKdump, kdumpOffsets, type BuilderCodec, type KdumpSpec } from '../../builders/kdump-builder.js';
import { errorOf } from '../../helpers/errors.js';

const PS = 4096;
const VMCI = 'OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a10000\nNUMBER(pgtable_l5_enabled)=0\n';

async function open(bytes: Uint8Array, opts = {}): Promise<KdumpReader> {
  return KdumpReader.open(new BufferSource(bytes, 'dump.kdump'), opts);
}


async function readPage(r: KdumpReader, pfn: number): Promise<Uint8Array> {
  const b = new Uint8Array(PS);
  await r.readPages(pfn, 1, b);
  return b;
}

/** A small dump: RAM [0, 40), pages 1-5, 8, 20-23 dumped; 6, 7 excluded; 30.. RAM but excluded. */
function basicSpec(codec: BuilderCodec = 'zlib', extra: Partial<KdumpSpec> = {}): KdumpSpec {
  const pfns = [1, 2, 3, 4, 5, 8, 20, 21, 22, 23];
  return {
    maxPfn: 48,
    ram: [[0, 40]],
    codec,
    vmcoreinfo: VMCI,
    pages: pfns.map((pfn) => ({ pfn })),
    ...extra,
  };
}

describe('KdumpReader on builder files', () => {
  for (const codec of ['none', 'zlib', 'lzo', 'snappy', 'zstd'] as const) {
    it(`reads every page of a ${codec} file and reports the codec`, async () => {
      const r = await open(buildKdump(basicSpec(codec)));
      expect(r.info.format).toBe('kdump');
      expect(r.info.compression).toBe(codec);
      for (const pfn of [1, 2, 3, 4, 5, 8, 20, 21, 22, 23]) expect(await readPage(r, pfn)).toEqual(taggedPage(pfn));
      // A multi-page read across pages stored one after the other.
      const buf = new Uint8Array(4 * PS);
      await r.readPages(20, 4, buf);
      for (let i = 0; i < 4; i++) expect(buf.subarray(i * PS, (i + 1) * PS)).toEqual(taggedPage(20 + i));
    });
  }

  it('maps both bitmaps to pfn states', async () => {
    const r = await open(buildKdump(basicSpec()));
    const st = new Uint8Array(50);
    await r.pfnStates(0, 50, st);
    const want = Array.from({ length: 50 }, (_, p) =>
      [1, 2, 3, 4, 5, 8, 20, 21, 22, 23].includes(p) ? PfnState.PRESENT : p < 40 ? PfnState.ABSENT : PfnState.HOLE,
    );
    expect([...st]).toEqual(want);
    // A window starting mid-byte.
    const part = new Uint8Array(6);
    await r.pfnStates(3, 6, part);
    expect([...part]).toEqual(want.slice(3, 9));
  });

  it('reads the header, sub header, notes and VMCOREINFO', async () => {
    const notes = noteBytes([
      { name: 'CORE', type: 1, desc: new Uint8Array(336) },
      { name: 'CORE', type: 1, desc: new Uint8Array(336) },
      { name: 'VMCOREINFO', type: 0, desc: Buffer.from(VMCI, 'latin1') },
    ]);
    const spec = basicSpec('zlib', { notes, dumpLevel: 17, physBase: 0x1000000, utsname: { release: '6.1.0-9', nodename: 'guest' } });
    const r = await open(buildKdump(spec));
    const i = r.info;
    expect(i.pageSize).toBe(PS);
    expect(i.maxPfn).toBe(48);
    expect(i.cpus).toBe(2);
    expect(i.dumpLevel).toBe(17);
    expect(i.utsname).toMatchObject({ sysname: 'Linux', release: '6.1.0-9', nodename: 'guest', machine: 'x86_64' });
    expect(i.vmcoreinfo?.osrelease).toBe('6.1.0-test');
    expect(i.vmcoreinfo?.symbol('swapper_pg_dir')).toBe(0xffffffff82a10000n);
    expect(Buffer.compare(Buffer.from(i.notes), Buffer.from(notes))).toBe(0);
    expect(i.details).toMatchObject({ 'header version': 6, 'block size': PS, bitmaps: 2, 'phys base': '0x1000000', 'vmcoreinfo from': 'note', 'notes offset': PS + 104 });
  });

  it('takes VMCOREINFO from offset_vmcoreinfo for header_version 3', async () => {
    const r = await open(buildKdump(basicSpec('zlib', { headerVersion: 3 })));
    expect(r.info.vmcoreinfo?.get('NUMBER(pgtable_l5_enabled)')).toBe('0');
    expect(r.info.details?.['vmcoreinfo from']).toBe('offset_vmcoreinfo');
    expect(r.info.notes.length).toBe(0);
    expect(await readPage(r, 21)).toEqual(taggedPage(21));
  });

  for (const v of [1, 2, 4, 5]) {
    it(`reads header_version ${v} (max_mapnr from the main header)`, async () => {
      const r = await open(buildKdump(basicSpec('lzo', { headerVersion: v })));
      expect(r.info.maxPfn).toBe(48);
      expect(r.info.details?.['header version']).toBe(v);
      expect(r.info.vmcoreinfo === undefined).toBe(v < 4);
      expect(await readPage(r, 8)).toEqual(taggedPage(8));
    });
  }

  it('ignores sub-header fields newer than the header version', async () => {
    // v2 with garbage where max_mapnr_64 and offset_note would be: unused.
    const bytes = buildKdump(basicSpec('zlib', { headerVersion: 2 }));
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    dv.setUint32(PS + 96, 0xffffffff, true);
    dv.setUint32(PS + 48, 0x7fffffff, true);
    dv.setUint32(PS + 56, 0x7fffffff, true);
    const r = await open(bytes);
    expect(r.info.maxPfn).toBe(48);
    expect(await readPage(r, 1)).toEqual(taggedPage(1));
  });

  it('reads the DISKDUMP signature and a single bitmap', async () => {
    const r = await open(buildKdump(basicSpec('none', { signature: 'DISKDUMP', headerVersion: 2, singleBitmap: true })));
    expect(r.info.details).toMatchObject({ signature: 'DISKDUMP', bitmaps: 1 });
    const st = new Uint8Array(10);
    await r.pfnStates(0, 10, st);
    expect([...st]).toEqual([0, 2, 2, 2, 2, 2, 0, 0, 2, 0]);
    expect(await readPage(r, 5)).toEqual(taggedPage(5));
  });

  it('says which compression pages use when status does not, and "mixed" for several', async () => {
    const z = await open(buildKdump(basicSpec('zlib', { status: 0 })));
    expect(z.info.compression).toBe('zlib');
    const mixed = await open(
      buildKdump({
        maxPfn: 16,
        status: 0,
        pages: [
          { pfn: 1, codec: 'zlib' },
          { pfn: 2, codec: 'zstd' },
        ],
      }),
    );
    expect(mixed.info.compression).toBe('mixed');
    expect(await readPage(mixed, 2)).toEqual(taggedPage(2));
  });

  it('reads pages that share the zero page, and raw pages among compressed ones', async () => {
    const random = randomBytes(PS);
    const spec: KdumpSpec = {
      maxPfn: 16,
      codec: 'zstd',
      dumpLevel: 1,
      pages: [{ pfn: 1 }, { pfn: 2, sharedZero: true }, { pfn: 3, data: random }, { pfn: 4, sharedZero: true }, { pfn: 5, sharedZero: true }, { pfn: 6 }],
    };
    const bytes = buildKdump(spec);
    const r = await open(bytes);
    const buf = new Uint8Array(6 * PS).fill(0xff);
    await r.readPages(1, 6, buf);
    expect(buf.subarray(0, PS)).toEqual(taggedPage(1));
    expect(buf.subarray(PS, 2 * PS)).toEqual(new Uint8Array(PS));
    expect(Buffer.compare(Buffer.from(buf.subarray(2 * PS, 3 * PS)), random)).toBe(0);
    expect(buf.subarray(3 * PS, 5 * PS)).toEqual(new Uint8Array(2 * PS));
    expect(buf.subarray(5 * PS)).toEqual(taggedPage(6));
    // The random page is stored raw: its descriptor says so.
    const { descOff } = kdumpOffsets(spec);
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(dv.getUint32(descOff + 2 * 24 + 8, true)).toBe(PS);
    expect(dv.getUint32(descOff + 2 * 24 + 12, true)).toBe(0);
  });

  it('readPhys crosses page boundaries and refuses excluded pages', async () => {
    const r = await open(buildKdump(basicSpec('snappy')));
    const b = new Uint8Array(32);
    await r.readPhys(3 * PS - 16, 32, b);
    expect(b.subarray(0, 16)).toEqual(new Uint8Array(16).fill(0xa5));
    expect(new DataView(b.buffer).getBigUint64(16, true)).toBe(3n);
    expect((await errorOf(r.readPhys(6 * PS, 8, b))).code).toBe('ADDRESS_UNMAPPED');
    expect((await errorOf(r.readPhys(100 * PS, 8, b))).message).toMatch(/beyond max_mapnr/);
    // Many small reads of one page come from the page cache.
    const counting = new CountingSource(new BufferSource(buildKdump(basicSpec('snappy')), 'c'));
    const r2 = await KdumpReader.open(counting);
    await r2.readPhys(2 * PS, 8, b);
    const before = counting.ranges.length;
    for (let k = 0; k < 100; k++) await r2.readPhys(2 * PS + 8 * k, 8, b);
    expect(counting.ranges.length).toBe(before);
  });

  it('keeps concurrent calls apart (shared scratch buffers and caches)', async () => {
    const pfns = Array.from({ length: 600 }, (_, i) => i * 5);
    const r = await open(buildKdump({ maxPfn: 3000, codec: 'zstd', pages: pfns.map((pfn) => ({ pfn })) }), { rankChunkBytes: 64 });
    const bufs = pfns.map(() => new Uint8Array(PS));
    const small = pfns.map(() => new Uint8Array(8));
    await Promise.all(pfns.flatMap((pfn, i) => [r.readPages(pfn, 1, bufs[i]!), r.readPhys(pfn * PS, 8, small[i]!)]));
    pfns.forEach((pfn, i) => {
      expect(bufs[i]).toEqual(taggedPage(pfn));
      expect(new DataView(small[i]!.buffer).getBigUint64(0, true)).toBe(BigInt(pfn));
    });
  });

  it('refuses readPages of excluded, hole and out-of-range pfns', async () => {
    const r = await open(buildKdump(basicSpec()));
    const buf = new Uint8Array(4 * PS);
    expect((await errorOf(r.readPages(5, 2, buf))).message).toMatch(/pfn 0x6 is not in the dump/);
    expect((await errorOf(r.readPages(45, 4, buf))).message).toMatch(/beyond max_mapnr/);
  });

  it('keeps the rank index right across many chunks', async () => {
    // 2^17 pfns, dumped pages scattered; rank chunks of 64 bytes (512 pfns).
    const pfns: number[] = [];
    for (let p = 0; p < 1 << 17; p += 97) pfns.push(p);
    pfns.push((1 << 17) - 1);
    const spec: KdumpSpec = { maxPfn: 1 << 17, codec: 'lzo', pages: pfns.map((pfn) => ({ pfn })) };
    const bytes = buildKdump(spec);
    for (const rankChunkBytes of [64, 4096]) {
      const r = await open(bytes, { rankChunkBytes });
      expect(r.info.details?.['dumped pages']).toBe(pfns.length);
      for (const pfn of [0, 97, 511 * 97, 1000 * 97, pfns[pfns.length - 2]!, (1 << 17) - 1]) {
        expect(await readPage(r, pfn)).toEqual(taggedPage(pfn));
      }
    }
  });

  it('opens without reading page data or the whole descriptor table', async () => {
    const pfns = Array.from({ length: 3000 }, (_, i) => i * 3);
    const spec: KdumpSpec = { maxPfn: 9000, codec: 'zlib', pages: pfns.map((pfn) => ({ pfn })) };
    const bytes = buildKdump(spec);
    const { descOff, dataStart } = kdumpOffsets(spec);
    const src = new CountingSource(new BufferSource(bytes, 'big'));
    const r = await KdumpReader.open(src);
    expect(src.touched(dataStart, bytes.length)).toBe(false);
    expect(src.touched(descOff + 1024 * 24, dataStart)).toBe(false);
    // Reading one late page touches its descriptor and its data only.
    src.ranges.length = 0;
    expect(await readPage(r, 2999 * 3)).toEqual(taggedPage(2999 * 3));
    const touchedDesc = src.ranges.filter(([s]) => s >= descOff && s < dataStart);
    expect(touchedDesc).toEqual([[descOff + 2999 * 24, descOff + 3000 * 24]]);
    const bytes1 = src.ranges.reduce((n, [s, e]) => n + e - s, 0);
    expect(bytes1).toBeLessThan(2 * PS);
  });
});

describe('KdumpReader on hostile files', () => {
  const good = (): Uint8Array => buildKdump(basicSpec());

  it('truncated header', async () => {
    const e = await errorOf(open(good().subarray(0, 300)));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.offset).toBe(0);
    expect(e.message).toMatch(/^dump\.kdump: offset 0x0: disk_dump_header needs 464 bytes/);
  });

  it('unknown signature', async () => {
    const b = good();
    b.set(Buffer.from('KDUMPXXX'), 0);
    const e = await errorOf(open(b));
    expect(e.code).toBe('DUMP_UNSUPPORTED');
    expect(e.offset).toBe(0);
  });

  it('block_size 0', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { header: { blockSize: 0 } }))));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.offset).toBe(428);
    expect(e.message).toContain('block_size 0');
  });

  it('block_size huge', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { header: { blockSize: 1 << 30 } }))));
    expect(e.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e.offset).toBe(428);
  });

  it('block_size not a power of two', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { header: { blockSize: 5000 } }))));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.offset).toBe(428);
  });

  it('big-endian header', async () => {
    const b = good();
    new DataView(b.buffer, b.byteOffset).setInt32(428, 4096, false);
    const e = await errorOf(open(b));
    expect(e.code).toBe('DUMP_UNSUPPORTED');
    expect(e.message).toMatch(/big-endian/);
  });

  it('header_version from the future is read as version 6, with a warning', async () => {
    const b = good();
    new DataView(b.buffer, b.byteOffset).setInt32(8, 7, true);
    const r = await open(b);
    expect(r.info.warnings).toEqual(['header_version 7 is newer than 6, the last one known: read as version 6']);
    expect(r.info.maxPfn).toBe(48);
    expect(await readPage(r, 21)).toEqual(taggedPage(21));
  });

  it('bitmap_blocks too small for max_mapnr', async () => {
    const spec = basicSpec('zlib', { maxPfn: 40000, header: { bitmapBlocks: 1 } });
    const e = await errorOf(open(buildKdump(spec)));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.offset).toBe(436);
    expect(e.message).toMatch(/cannot cover max_mapnr 40000/);
  });

  it('bitmap_blocks past the end of the file', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { header: { bitmapBlocks: 1000 } }))));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.offset).toBe(kdumpOffsets(basicSpec()).bm1);
  });

  it('max_mapnr_64 beyond 2^52 bytes of memory', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { header: { maxMapnr64: 2 ** 41 } }))));
    expect(e.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(e.offset).toBe(PS + 96);
  });

  it('max_mapnr_64 zero in a v6 header: the 32-bit max_mapnr is used, with a warning', async () => {
    const r = await open(buildKdump(basicSpec('zlib', { header: { maxMapnr64: 0 } })));
    expect(r.info.maxPfn).toBe(48);
    expect(r.info.warnings).toEqual(['max_mapnr_64 is 0: max_mapnr 0x30 from the 32-bit field used']);
    expect(await readPage(r, 8)).toEqual(taggedPage(8));
    // A saturated 32-bit field cannot stand in for it.
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { header: { maxMapnr64: 0, maxMapnr: 0xffffffff } }))));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.offset).toBe(PS + 96);
  });

  it('descriptor table past the end of the file', async () => {
    const spec = basicSpec();
    const { descOff } = kdumpOffsets(spec);
    const e = await errorOf(open(buildKdump({ ...spec, truncateTo: descOff + 5 * 24 })));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.offset).toBe(descOff);
  });

  it('descriptor pointing past the end of the file', async () => {
    const spec = basicSpec('zlib');
    spec.pages[2]!.desc = { offset: 10 << 20 };
    const r = await open(buildKdump(spec));
    const e = await errorOf(readPage(r, 3));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.offset).toBe(kdumpOffsets(spec).descOff + 2 * 24);
    expect(e.message).toMatch(/data of pfn 0x3 at 0xa00000/);
    // Other pages still read.
    expect(await readPage(r, 4)).toEqual(taggedPage(4));
  });

  it('compressed size larger than the block size', async () => {
    const spec = basicSpec('zlib');
    spec.pages[0]!.stored = new Uint8Array(PS + 20);
    spec.pages[0]!.desc = { flags: 1 };
    const r = await open(buildKdump(spec));
    const e = await errorOf(readPage(r, 1));
    expect(e.code).toBe('DUMP_CORRUPT');
    expect(e.offset).toBe(kdumpOffsets(spec).descOff);
    expect(e.message).toMatch(/4116 bytes, larger than the block size 4096/);
    // readPhys goes through the same check.
    expect((await errorOf(r.readPhys(PS, 8, new Uint8Array(8)))).code).toBe('DUMP_CORRUPT');
  });

  it('a zlib bomb', async () => {
    const spec = basicSpec('zlib');
    spec.pages[1]!.stored = deflateSync(new Uint8Array(1 << 20));
    spec.pages[1]!.desc = { flags: 1 };
    const bytes = buildKdump(spec);
    const r = await open(bytes);
    const e = await errorOf(readPage(r, 2));
    expect(e.code).toBe('DUMP_CORRUPT');
    const dv = new DataView(bytes.buffer, bytes.byteOffset);
    expect(e.offset).toBe(dv.getUint32(kdumpOffsets(spec).descOff + 24, true));
    expect(e.message).toMatch(/pfn 0x2: zlib data inflates to more than the block size/);
  });

  it('unknown page flags and raw pages of the wrong size', async () => {
    const spec = basicSpec('zlib');
    spec.pages[0]!.desc = { flags: 0x9 };
    spec.pages[1]!.desc = { flags: 0, size: 100 };
    const r = await open(buildKdump(spec));
    expect((await errorOf(readPage(r, 1))).message).toMatch(/flags 0x9/);
    expect((await errorOf(readPage(r, 2))).message).toMatch(/raw page of pfn 0x2 is 100 bytes/);
  });

  it('an incomplete dump: empty descriptors and a table cut short', async () => {
    const spec = basicSpec('zlib', { status: 1 | 8 });
    spec.pages[9]!.desc = { offset: 0, size: 0, flags: 0 };
    const { descOff } = kdumpOffsets(spec);
    const r = await open(buildKdump(spec));
    expect(r.info.details?.['incomplete (status & 0x8)']).toBe(true);
    const e = await errorOf(readPage(r, 23));
    expect(e.code).toBe('DUMP_TRUNCATED');
    expect(e.offset).toBe(descOff + 9 * 24);
    expect(e.message).toMatch(/incomplete/);
    expect(await readPage(r, 22)).toEqual(taggedPage(22));
    // With the incomplete flag, a table past EOF opens; lost descriptors read as empty.
    const cut = await open(buildKdump({ ...spec, truncateTo: descOff + 4 * 24 }));
    expect(await errorOf(readPage(cut, 8))).toMatchObject({ code: 'DUMP_TRUNCATED', offset: descOff + 5 * 24 });
  });

  it('a split dump is refused', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { split: 1 }))));
    expect(e.code).toBe('DUMP_UNSUPPORTED');
    expect(e.offset).toBe(PS + 12);
    expect(e.message).toMatch(/one part of a split dump \(pfns \[0x0, 0x0\)\): name every part of the set .*dumpsieve reassemble/);
  });

  it('note size above the limit, and notes past the end of the file', async () => {
    const big = await errorOf(open(buildKdump(basicSpec('zlib', { header: { sizeNote: 2 ** 40 } }))));
    expect(big.code).toBe('DUMP_LIMIT_EXCEEDED');
    expect(big.offset).toBe(PS + 56);
    const past = await errorOf(open(buildKdump(basicSpec('zlib', { header: { sizeNote: 50 << 20 } }))));
    expect(past.code).toBe('DUMP_TRUNCATED');
    expect(past.offset).toBe(PS + 104);
  });

  it('sub_hdr_size negative or absurd', async () => {
    const neg = await errorOf(open(buildKdump(basicSpec('zlib', { header: { subHdrSize: -1 } }))));
    expect(neg).toMatchObject({ code: 'DUMP_CORRUPT', offset: 432 });
    const huge = await errorOf(open(buildKdump(basicSpec('zlib', { header: { subHdrSize: 0x7fffffff } }))));
    expect(huge).toMatchObject({ code: 'DUMP_LIMIT_EXCEEDED', offset: 432 });
  });

  it('a machine other than x86_64', async () => {
    const e = await errorOf(open(buildKdump(basicSpec('zlib', { utsname: { machine: 'aarch64' } }))));
    expect(e).toMatchObject({ code: 'DUMP_UNSUPPORTED', offset: 12 + 4 * 65 });
  });

  it('a u64 beyond 2^53 in the sub header', async () => {
    const b = good();
    new DataView(b.buffer, b.byteOffset).setUint32(PS + 52, 0xffffffff, true); // offset_note high word
    const e = await errorOf(open(b));
    expect(e).toMatchObject({ code: 'DUMP_CORRUPT', offset: PS + 48 });
    expect(e.message).toMatch(/offset_note/);
  });
});
