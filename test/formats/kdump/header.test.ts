import { describe, expect, it } from 'vitest';
import { DumpError } from '../../../src/core/errors.js';
import {
  DISK_DUMP_HEADER_SIZE,
  KDUMP_SUB_HEADER_SIZE,
  decodeDiskDumpHeader,
  decodeSubHeader,
  describeStatus,
  encodeDiskDumpHeader,
  encodeSubHeader,
  probeKdump,
  type DiskDumpHeader,
  type KdumpSubHeader,
} from '../../../src/formats/kdump/header.js';

const dh: DiskDumpHeader = {
  signature: 'KDUMP   ',
  headerVersion: 6,
  utsname: { sysname: 'Linux', nodename: 'n'.repeat(70), release: '6.1.0-18-amd64', version: '#1 SMP PREEMPT_DYNAMIC', machine: 'x86_64', domainname: '(none)' },
  timestampSec: 1_712_345_678,
  timestampUsec: 123456,
  status: 0x21,
  blockSize: 4096,
  subHdrSize: 3,
  bitmapBlocks: 16,
  maxMapnr: 0x40000,
  totalRamBlocks: 11,
  deviceBlocks: 12,
  writtenBlocks: 13,
  currentCpu: 2,
  nrCpus: 8,
};

const kh: KdumpSubHeader = {
  physBase: 0x1e00000,
  dumpLevel: 31,
  split: 0,
  startPfn: 1,
  endPfn: 2,
  offsetVmcoreinfo: 0x1234,
  sizeVmcoreinfo: 0x567,
  offsetNote: 0x1068,
  sizeNote: 0x2000,
  offsetEraseinfo: 0x99999,
  sizeEraseinfo: 77,
  startPfn64: 2 ** 40,
  endPfn64: 2 ** 41,
  maxMapnr64: 2 ** 33 + 1,
};

describe('disk_dump_header', () => {
  it('puts every field at its LP64 offset', () => {
    const b = Buffer.from(encodeDiskDumpHeader(dh));
    expect(b.length).toBe(DISK_DUMP_HEADER_SIZE);
    expect(b.toString('latin1', 0, 8)).toBe('KDUMP   ');
    expect(b.readInt32LE(8)).toBe(6);
    expect(b.toString('latin1', 12, 17)).toBe('Linux');
    expect(b.toString('latin1', 12 + 65, 12 + 65 + 65)).toBe(`${'n'.repeat(64)}\0`);
    expect(b.toString('latin1', 12 + 4 * 65, 12 + 4 * 65 + 6)).toBe('x86_64');
    expect(b.subarray(402, 408)).toEqual(Buffer.alloc(6)); // padding before timeval
    expect(b.readBigInt64LE(408)).toBe(1_712_345_678n);
    expect(b.readBigInt64LE(416)).toBe(123456n);
    expect([424, 428, 432, 436, 440, 444, 448, 452, 456, 460].map((o) => b.readUInt32LE(o))).toEqual([0x21, 4096, 3, 16, 0x40000, 11, 12, 13, 2, 8]);
  });

  it('decodes what it encodes (utsname fields cut at 64 characters)', () => {
    const back = decodeDiskDumpHeader(encodeDiskDumpHeader(dh));
    expect(back).toEqual({ ...dh, utsname: { ...dh.utsname, nodename: 'n'.repeat(64) } });
  });

  it('keeps signed fields signed', () => {
    const b = encodeDiskDumpHeader({ ...dh, blockSize: -4096, subHdrSize: -1, nrCpus: -2 });
    const back = decodeDiskDumpHeader(b);
    expect([back.blockSize, back.subHdrSize, back.nrCpus]).toEqual([-4096, -1, -2]);
  });

  it('fails on a short buffer', () => {
    expect(() => decodeDiskDumpHeader(new Uint8Array(100), 'f')).toThrow(DumpError);
  });
});

describe('kdump_sub_header', () => {
  it('round-trips every field at header_version 6', () => {
    const b = encodeSubHeader(kh);
    expect(b.length).toBe(KDUMP_SUB_HEADER_SIZE);
    const dv = new DataView(b.buffer);
    expect(dv.getBigUint64(96, true)).toBe(2n ** 33n + 1n);
    expect(dv.getInt32(8, true)).toBe(31);
    expect(decodeSubHeader(b, 6)).toEqual(kh);
  });

  it('reads fields newer than the header version as 0', () => {
    const b = encodeSubHeader(kh);
    const v3 = decodeSubHeader(b, 3);
    expect(v3).toMatchObject({ physBase: kh.physBase, dumpLevel: 31, offsetVmcoreinfo: 0x1234, sizeVmcoreinfo: 0x567 });
    expect([v3.offsetNote, v3.sizeNote, v3.offsetEraseinfo, v3.maxMapnr64]).toEqual([0, 0, 0, 0]);
    const v1 = decodeSubHeader(b, 1);
    expect([v1.split, v1.startPfn, v1.offsetVmcoreinfo]).toEqual([0, 0, 0]);
    expect(v1.dumpLevel).toBe(31);
  });

  it('names the field and offset of a u64 beyond 2^53', () => {
    const b = encodeSubHeader(kh);
    new DataView(b.buffer).setUint32(44, 0xffffffff, true); // size_vmcoreinfo high word
    try {
      decodeSubHeader(b, 6, 'vmcore', 4096);
      throw new Error('no error');
    } catch (err) {
      expect(err).toBeInstanceOf(DumpError);
      expect((err as DumpError).offset).toBe(4096 + 40);
      expect((err as DumpError).message).toMatch(/^vmcore: offset 0x1028: size_vmcoreinfo is 0xffffffff00000567, beyond 2\^53$/);
    }
    // The same bytes are harmless when the version predates the field.
    expect(decodeSubHeader(b, 2).sizeVmcoreinfo).toBe(0);
  });
});

describe('probe and status', () => {
  it('recognises both signatures and nothing else', () => {
    expect(probeKdump(Buffer.from('KDUMP   rest'))).toBe(true);
    expect(probeKdump(Buffer.from('DISKDUMPrest'))).toBe(true);
    expect(probeKdump(Buffer.from('KDUMP  '))).toBe(false);
    expect(probeKdump(Buffer.from('KDUMP\0\0\0'))).toBe(false);
    expect(probeKdump(new Uint8Array(0))).toBe(false);
  });

  it('names status bits', () => {
    expect(describeStatus(0)).toBe('none');
    expect(describeStatus(0x1 | 0x8 | 0x10)).toBe('zlib|incomplete|excluded-vmemmap');
    expect(describeStatus(0x20 | 0x100)).toBe('zstd|0x100');
  });
});
