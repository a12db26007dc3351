import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StreamWriter } from '../../../src/io/sink.js';
import { BufferSource } from '../../../src/io/source.js';
import { FlatSink } from '../../../src/formats/flat/writer.js';
import { FlatSource, probeFlat } from '../../../src/formats/flat/reader.js';
import { KdumpWriter } from '../../../src/formats/kdump/writer.js';
import { buildFlat, flatHeader, flatRecords, rebuildFlat, type FlatRecord } from './flat-builder.js';
import { MemorySink } from '../kdump/memory-sink.js';
import { TEST_VMCOREINFO, driveWriter, type DriveSpec } from '../kdump/drive.js';
import { errorOf } from '../../helpers/errors.js';

/** A stream that collects what is written, optionally slowly (backpressure). */
class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  ended = false;
  constructor(private readonly slow = false) {
    super({ highWaterMark: 1024 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    if (this.slow) setImmediate(cb);
    else cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.ended = true;
    cb();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function flatSink(slow = false): { sink: FlatSink; out: Collect } {
  const out = new Collect(slow);
  return { sink: new FlatSink(new StreamWriter(out, 'flat.out')), out };
}


async function readAll(src: FlatSource): Promise<Buffer> {
  const b = Buffer.alloc(src.size);
  expect(await src.read(b, 0, b.length, 0)).toBe(b.length);
  return b;
}

describe('FlatSink', () => {
  it('writes the header block, big-endian records in call order and the end marker', async () => {
    const { sink, out } = flatSink();
    const a = Buffer.from('second part');
    const b = Buffer.from('first part');
    await sink.write(a, 100);
    await sink.write(b, 0);
    await sink.write(new Uint8Array(0), 50); // no empty record
    await sink.commit();
    const bytes = out.bytes;
    expect(out.ended).toBe(true);
    expect(Buffer.compare(bytes.subarray(0, 4096), flatHeader())).toBe(0);
    expect(bytes.toString('latin1', 0, 16)).toBe('makedumpfile\0\0\0\0');
    expect(bytes.readBigInt64BE(16)).toBe(1n);
    expect(bytes.readBigInt64BE(24)).toBe(1n);
    expect(flatRecords(bytes)).toEqual([
      [100, a.length],
      [0, b.length],
    ]);
    expect(bytes.subarray(bytes.length - 16)).toEqual(Buffer.from('ffffffffffffffffffffffffffffffff', 'hex'));
    const plain = rebuildFlat(bytes);
    expect(plain.length).toBe(100 + a.length);
    expect(Buffer.from(plain).toString('latin1', 0, b.length)).toBe('first part');
    expect(Buffer.from(plain).toString('latin1', 100)).toBe('second part');
  });

  it('makes the rebuilt file exactly setLength long', async () => {
    const { sink, out } = flatSink();
    await sink.write(Buffer.from('abc'), 10);
    await sink.setLength(9000);
    await sink.commit();
    expect(flatRecords(out.bytes)).toEqual([
      [10, 3],
      [8999, 1],
    ]);
    const plain = rebuildFlat(out.bytes);
    expect(plain.length).toBe(9000);
    // A length equal to the furthest record adds nothing.
    const s2 = flatSink();
    await s2.sink.write(Buffer.from('abc'), 10);
    await s2.sink.setLength(13);
    await s2.sink.commit();
    expect(flatRecords(s2.out.bytes)).toEqual([[10, 3]]);
  });

  it('refuses a length shorter than what was written', async () => {
    const { sink } = flatSink();
    await sink.write(Buffer.from('abcdef'), 0);
    await sink.setLength(3);
    expect((await errorOf(sink.commit())).message).toMatch(/cannot be cut to 3 bytes/);
  });

  it('copies data: callers may reuse their buffer at once', async () => {
    const { sink, out } = flatSink(true);
    const buf = Buffer.alloc(64 * 1024, 1);
    await sink.write(buf, 0);
    buf.fill(2);
    await sink.write(buf, buf.length);
    buf.fill(3);
    await sink.commit();
    const plain = Buffer.from(rebuildFlat(out.bytes));
    expect(plain[0]).toBe(1);
    expect(plain[buf.length]).toBe(2);
  });

  it('writes nothing more after abort', async () => {
    const { sink, out } = flatSink();
    await sink.write(Buffer.from('part'), 0);
    const before = out.bytes.length;
    await sink.abort();
    await sink.abort();
    expect(out.bytes.length).toBe(before);
    expect(out.bytes.subarray(out.bytes.length - 16)).not.toEqual(Buffer.alloc(16, 0xff));
    await expect(sink.write(Buffer.from('x'), 9)).rejects.toThrow(/closed/);
    expect(out.bytes.length).toBe(before);
  });

  it('carries a whole kdump file: rebuilt it equals the plain output', async () => {
    const spec: DriveSpec = {
      maxPfn: 3000,
      ram: [[0, 2800]],
      kept: [
        [0, 900],
        [1200, 2800],
      ],
      zero: (p) => p % 5 === 0,
      dumpLevel: 1,
      vmcoreinfo: TEST_VMCOREINFO,
      window: 1024,
    };
    const mem = new MemorySink();
    await driveWriter(new KdumpWriter(mem, 'zlib', { threads: 0 }), spec);
    const { sink, out } = flatSink(true);
    await driveWriter(new KdumpWriter(sink, 'zlib', { threads: 0 }), spec);
    expect(out.ended).toBe(true);
    const rebuilt = rebuildFlat(out.bytes);
    expect(rebuilt.length).toBe(mem.bytes.length);
    expect(Buffer.compare(Buffer.from(rebuilt), Buffer.from(mem.bytes))).toBe(0);
    // Read in place, the flattened file gives the same bytes.
    const src = await FlatSource.open(new BufferSource(out.bytes, 'k.flat'));
    expect(Buffer.compare(await readAll(src), Buffer.from(mem.bytes))).toBe(0);
  });
});

describe('FlatSink → FlatSource', () => {
  it('reads back out-of-order and overlapping writes as the positional file they describe', async () => {
    const { sink, out } = flatSink(true);
    const mem = new MemorySink();
    const writes: Array<[number, Buffer]> = [
      [70000, randomBytes(5000)],
      [0, randomBytes(4096)],
      [65536, randomBytes(70000)],
      [100, Buffer.alloc(50, 0x11)],
      [68000, Buffer.alloc(3000, 0x22)],
    ];
    for (const [pos, data] of writes) {
      await sink.write(data, pos);
      await mem.write(data, pos);
    }
    await sink.setLength(200000);
    await mem.setLength(200000);
    await sink.commit();
    const src = await FlatSource.open(new BufferSource(out.bytes, 'w.flat'));
    expect(src.size).toBe(200000);
    const got = await readAll(src);
    expect(Buffer.compare(got, Buffer.from(mem.bytes))).toBe(0);
    expect(got[68000]).toBe(0x22);
    expect([got[99], got[100], got[149]]).toEqual([mem.bytes[99], 0x11, 0x11]);
  });
});

describe('FlatSource', () => {
  it('reads records in any order as the rebuilt file, holes as zeros', async () => {
    const r1 = randomBytes(5000);
    const r2 = randomBytes(3000);
    const r3 = randomBytes(100);
    const flat = buildFlat([
      { offset: 10000, data: r2 },
      { offset: 0, data: r1 },
      { offset: 20000, data: r3 },
    ]);
    const src = await FlatSource.open(new BufferSource(flat, 'x.flat'));
    expect(src.size).toBe(20100);
    expect(src.records).toBe(3);
    const all = await readAll(src);
    expect(Buffer.compare(all, Buffer.from(rebuildFlat(flat)))).toBe(0);
    expect(all.subarray(5000, 10000)).toEqual(Buffer.alloc(5000));
    // Partial reads: across a hole into a record; at the end; past the end.
    const b = Buffer.alloc(200);
    expect(await src.read(b, 0, 200, 9900)).toBe(200);
    expect(b.subarray(0, 100)).toEqual(Buffer.alloc(100));
    expect(b.subarray(100)).toEqual(r2.subarray(0, 100));
    expect(await src.read(b, 0, 200, 20050)).toBe(50);
    expect(b.subarray(0, 50)).toEqual(r3.subarray(50));
    expect(await src.read(b, 0, 10, 20100)).toBe(0);
  });

  it('lets later records win where they overlap', async () => {
    const a = Buffer.alloc(100, 0xaa);
    const b = Buffer.alloc(100, 0xbb);
    const c = Buffer.alloc(10, 0xcc);
    const flat = buildFlat([
      { offset: 0, data: a },
      { offset: 50, data: b },
      { offset: 40, data: c },
    ]);
    const src = await FlatSource.open(new BufferSource(flat, 'o'));
    const all = await readAll(src);
    expect(Buffer.compare(all, Buffer.from(rebuildFlat(flat)))).toBe(0);
    expect([all[39], all[40], all[49], all[50], all[99], all[149]]).toEqual([0xaa, 0xcc, 0xcc, 0xbb, 0xbb, 0xbb]);
    const rev = await FlatSource.open(new BufferSource(buildFlat([{ offset: 50, data: b }, { offset: 0, data: a }]), 'r'));
    const all2 = await readAll(rev);
    expect([all2[99], all2[100], all2[149]]).toEqual([0xaa, 0xbb, 0xbb]);
  });

  it('collapses series of equal records into runs and reads across their boundaries', async () => {
    // makedumpfile style: 64 KiB data flushes, with descriptor flushes in between.
    const recs: FlatRecord[] = [];
    const plain = Buffer.alloc(40 * 65536 + 777);
    let data = 1 << 20;
    for (let k = 0; k < 40; k++) {
      const chunk = randomBytes(65536);
      chunk.copy(plain, data - (1 << 20));
      recs.push({ offset: data, data: chunk });
      data += 65536;
      if (k % 10 === 9) recs.push({ offset: k * 24, data: randomBytes(24) });
    }
    const tail = randomBytes(777);
    recs.push({ offset: data, data: tail });
    const flat = buildFlat(recs);
    const src = await FlatSource.open(new BufferSource(flat, 'runs'));
    expect(src.records).toBe(45);
    expect(src.runCount).toBeLessThanOrEqual(9);
    const want = Buffer.from(rebuildFlat(flat));
    const got = await readAll(src);
    expect(Buffer.compare(got, want)).toBe(0);
    // A read spanning three records.
    const b = Buffer.alloc(65536 * 2 + 10);
    await src.read(b, 0, b.length, (1 << 20) + 65530);
    expect(Buffer.compare(b, want.subarray((1 << 20) + 65530, (1 << 20) + 65530 + b.length))).toBe(0);
  });

  it('probes without throwing', () => {
    expect(probeFlat(flatHeader())).toBe(true);
    expect(probeFlat(Buffer.from('makedumpfileX'.padEnd(32, '\0')))).toBe(false);
    expect(probeFlat(Buffer.from('makedump'))).toBe(false);
    expect(probeFlat(new Uint8Array(0))).toBe(false);
  });
});

describe('FlatSource on hostile files', () => {
  const rec = (offset: number | bigint, size?: number | bigint, data = Buffer.alloc(8, 1)): FlatRecord => ({ offset, data, size });

  it('file shorter than the header block', async () => {
    expect(await errorOf(FlatSource.open(new BufferSource(flatHeader().subarray(0, 100), 'f')))).toMatchObject({ code: 'DUMP_TRUNCATED', offset: 0 });
  });

  it('wrong signature or type', async () => {
    expect(await errorOf(FlatSource.open(new BufferSource(buildFlat([], { header: flatHeader('makedumpfilf') }), 'f')))).toMatchObject({
      code: 'DUMP_UNSUPPORTED',
      offset: 0,
    });
    const t = await errorOf(FlatSource.open(new BufferSource(buildFlat([], { header: flatHeader('makedumpfile', 2n) }), 'f')));
    expect(t).toMatchObject({ code: 'DUMP_UNSUPPORTED', offset: 16 });
    expect(t.message).toMatch(/type 2 is not 1/);
  });

  it('negative offset', async () => {
    const e = await errorOf(FlatSource.open(new BufferSource(buildFlat([rec(0), rec(-5n)]), 'f')));
    expect(e).toMatchObject({ code: 'DUMP_CORRUPT', offset: 4096 + 24 });
    expect(e.message).toMatch(/negative offset/);
  });

  it('negative size', async () => {
    const e = await errorOf(FlatSource.open(new BufferSource(buildFlat([rec(0, -8n)]), 'f')));
    expect(e).toMatchObject({ code: 'DUMP_CORRUPT', offset: 4096 });
    expect(e.message).toMatch(/negative size/);
  });

  it('huge size', async () => {
    const e = await errorOf(FlatSource.open(new BufferSource(buildFlat([rec(0, 2n ** 62n)]), 'f')));
    expect(e).toMatchObject({ code: 'DUMP_TRUNCATED', offset: 4096 });
    expect(e.message).toMatch(/runs past the end of the file/);
  });

  it('offset beyond the plain-size limit', async () => {
    const e = await errorOf(FlatSource.open(new BufferSource(buildFlat([rec(2n ** 60n)]), 'f')));
    expect(e).toMatchObject({ code: 'DUMP_LIMIT_EXCEEDED', offset: 4096 });
  });

  it('size 0', async () => {
    expect(await errorOf(FlatSource.open(new BufferSource(buildFlat([rec(0), rec(8, 0, Buffer.alloc(0))]), 'f')))).toMatchObject({
      code: 'DUMP_CORRUPT',
      offset: 4096 + 24,
    });
  });

  it('truncated record data and a missing end marker', async () => {
    const full = buildFlat([rec(0), rec(8, 100, Buffer.alloc(100))]);
    const cut = await errorOf(FlatSource.open(new BufferSource(full.subarray(0, full.length - 16 - 30), 'f')));
    expect(cut).toMatchObject({ code: 'DUMP_TRUNCATED', offset: 4096 + 24 });
    const noEnd = await errorOf(FlatSource.open(new BufferSource(buildFlat([rec(0)], { end: false }), 'f')));
    expect(noEnd).toMatchObject({ code: 'DUMP_TRUNCATED', offset: 4096 + 24 });
    expect(noEnd.message).toMatch(/without its end marker/);
  });

  it('more records or runs than the limits', async () => {
    // Ten contiguous equal records: one run.
    const recs = Array.from({ length: 10 }, (_, i) => rec(i * 8));
    const flat = buildFlat(recs);
    expect((await FlatSource.open(new BufferSource(flat, 'f'), { maxRuns: 1 })).runCount).toBe(1);
    expect(await errorOf(FlatSource.open(new BufferSource(flat, 'f'), { maxRecords: 9 }))).toMatchObject({ code: 'DUMP_LIMIT_EXCEEDED', offset: 4096 + 9 * 24 });
    // Every other record backwards: each one a run of its own.
    const scattered = buildFlat(Array.from({ length: 10 }, (_, i) => rec((9 - i) * 8)));
    expect(await errorOf(FlatSource.open(new BufferSource(scattered, 'f'), { maxRuns: 4 }))).toMatchObject({ code: 'DUMP_LIMIT_EXCEEDED', offset: 4096 + 4 * 24 });
  });

  it('half an end marker', async () => {
    const b = Buffer.from(buildFlat([rec(-1n, 5n)]));
    expect(await errorOf(FlatSource.open(new BufferSource(b, 'f')))).toMatchObject({ code: 'DUMP_CORRUPT', offset: 4096 });
  });
});
