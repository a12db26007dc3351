/**
 * kdump-compressed headers: `struct disk_dump_header` (block 0) and
 * `struct kdump_sub_header` (block 1), LP64 little-endian as makedumpfile
 * writes them on x86_64 (makedumpfile diskdump_mod.h; offsets measured with
 * gcc, see docs/formats/kdump-compressed.md).
 *
 * Decoding uses binary-parser (headers only: once per file). Every u64 is
 * turned into a number with a check that it is a safe integer, naming the
 * field and its file offset. Sub-header fields newer than the file's
 * header_version read as 0, whatever the bytes hold.
 */
import { setI64, setU64 } from '../../core/checked.js';
import { Parser } from 'binary-parser';
import { DumpError } from '../../core/errors.js';
import type { Utsname } from '../types.js';
import { PAGE_CODECS } from './codecs/table.js';

export const DISK_DUMP_HEADER_SIZE = 464;
export const KDUMP_SUB_HEADER_SIZE = 104;
/** `struct page_desc`: offset i64, size u32, flags u32, page_flags u64. */
export const PAGE_DESC_SIZE = 24;

export const KDUMP_SIGNATURE = 'KDUMP   ';
export const DISKDUMP_SIGNATURE = 'DISKDUMP';
/** The header_version makedumpfile 1.7.2 writes (makedumpfile.c write_kdump_header). */
export const KDUMP_HEADER_VERSION = 6;
export const NEW_UTS_LEN = 65;
/** block_size bounds readers accept (libkdumpfile try_header: MIN_PAGE_SIZE..MAX_PAGE_SIZE). */
export const MIN_BLOCK_SIZE = 4096;
export const MAX_BLOCK_SIZE = 262144;

/**
 * `disk_dump_header.status` bits other than the codecs (diskdump_mod.h).
 * The codec bits DUMP_DH_COMPRESSED_{ZLIB,LZO,SNAPPY,ZSTD}, which are also
 * the page_desc.flags values, are the `flag`s of the codec table
 * (codecs/table.ts).
 */
export const DUMP_DH = {
  /** the dump ran out of space; lost page_descs read as 0. */
  COMPRESSED_INCOMPLETE: 0x8,
  /** unused vmemmap pages were excluded (makedumpfile -e). */
  EXCLUDED_VMEMMAP: 0x10,
} as const;

/** Every status bit with its name, in bit order: the codecs by their table names. */
const STATUS_BITS: ReadonlyArray<readonly [number, string]> = [
  ...PAGE_CODECS.map((c) => [c.flag, c.name] as const),
  [DUMP_DH.COMPRESSED_INCOMPLETE, 'incomplete'] as const,
  [DUMP_DH.EXCLUDED_VMEMMAP, 'excluded-vmemmap'] as const,
].sort((a, b) => a[0] - b[0]);

/** Byte offsets of the fields, for error messages and the writer. */
export const DH_OFF = {
  signature: 0,
  headerVersion: 8,
  utsname: 12,
  timestamp: 408,
  status: 424,
  blockSize: 428,
  subHdrSize: 432,
  bitmapBlocks: 436,
  maxMapnr: 440,
  totalRamBlocks: 444,
  deviceBlocks: 448,
  writtenBlocks: 452,
  currentCpu: 456,
  nrCpus: 460,
} as const;

/** Offsets within kdump_sub_header, and the header_version that introduced each field. */
export const KH_OFF = {
  physBase: 0,
  dumpLevel: 8,
  split: 12,
  startPfn: 16,
  endPfn: 24,
  offsetVmcoreinfo: 32,
  sizeVmcoreinfo: 40,
  offsetNote: 48,
  sizeNote: 56,
  offsetEraseinfo: 64,
  sizeEraseinfo: 72,
  startPfn64: 80,
  endPfn64: 88,
  maxMapnr64: 96,
} as const;

export interface DiskDumpHeader {
  signature: string;
  headerVersion: number;
  utsname: Utsname;
  /** struct timeval */
  timestampSec: number;
  timestampUsec: number;
  status: number;
  blockSize: number;
  /** Blocks of sub header (with the note copy). */
  subHdrSize: number;
  /** Blocks of both bitmaps together. */
  bitmapBlocks: number;
  /** min(max_mapnr, 2^32-1); the full value is max_mapnr_64 (v6). */
  maxMapnr: number;
  totalRamBlocks: number;
  deviceBlocks: number;
  writtenBlocks: number;
  currentCpu: number;
  nrCpus: number;
}

export interface KdumpSubHeader {
  /** May be negative (stored as a two's-complement u64). */
  physBase: number;
  /** header_version 1 and later */
  dumpLevel: number;
  /** header_version 2 and later */
  split: number;
  startPfn: number;
  endPfn: number;
  /** header_version 3 and later */
  offsetVmcoreinfo: number;
  sizeVmcoreinfo: number;
  /** header_version 4 and later */
  offsetNote: number;
  sizeNote: number;
  /** header_version 5 and later */
  offsetEraseinfo: number;
  sizeEraseinfo: number;
  /** header_version 6 and later */
  startPfn64: number;
  endPfn64: number;
  maxMapnr64: number;
}

const utsField = (p: Parser, name: string): Parser => p.buffer(name, { length: NEW_UTS_LEN });

const diskDumpHeaderParser = (() => {
  let p = new Parser().endianness('little').string('signature', { length: 8, encoding: 'latin1' }).int32('headerVersion');
  for (const f of ['sysname', 'nodename', 'release', 'version', 'machine', 'domainname']) p = utsField(p, f);
  return p
    .seek(6) // alignment of struct timeval
    .int64('tvSec')
    .int64('tvUsec')
    .uint32('status')
    .int32('blockSize')
    .int32('subHdrSize')
    .uint32('bitmapBlocks')
    .uint32('maxMapnr')
    .uint32('totalRamBlocks')
    .uint32('deviceBlocks')
    .uint32('writtenBlocks')
    .uint32('currentCpu')
    .int32('nrCpus');
})();

interface RawDiskDumpHeader {
  signature: string;
  headerVersion: number;
  sysname: Buffer;
  nodename: Buffer;
  release: Buffer;
  version: Buffer;
  machine: Buffer;
  domainname: Buffer;
  tvSec: bigint;
  tvUsec: bigint;
  status: number;
  blockSize: number;
  subHdrSize: number;
  bitmapBlocks: number;
  maxMapnr: number;
  totalRamBlocks: number;
  deviceBlocks: number;
  writtenBlocks: number;
  currentCpu: number;
  nrCpus: number;
}

const subHeaderParser = new Parser()
  .endianness('little')
  // unsigned long in the C struct, but the kernel's phys_base is signed in
  // effect: negative (two's complement) when the kernel runs below its link
  // address, e.g. with KASLR; makedumpfile copies NUMBER(phys_base) as is.
  .int64('physBase')
  .int32('dumpLevel')
  .int32('split')
  .uint64('startPfn')
  .uint64('endPfn')
  .uint64('offsetVmcoreinfo')
  .uint64('sizeVmcoreinfo')
  .uint64('offsetNote')
  .uint64('sizeNote')
  .uint64('offsetEraseinfo')
  .uint64('sizeEraseinfo')
  .uint64('startPfn64')
  .uint64('endPfn64')
  .uint64('maxMapnr64');

type RawSubHeader = { [K in keyof KdumpSubHeader]: K extends 'dumpLevel' | 'split' ? number : bigint };

/** The header_version from which each sub-header field is meaningful. */
const KH_SINCE: { [K in keyof KdumpSubHeader]: number } = {
  physBase: 1,
  dumpLevel: 1,
  split: 2,
  startPfn: 2,
  endPfn: 2,
  offsetVmcoreinfo: 3,
  sizeVmcoreinfo: 3,
  offsetNote: 4,
  sizeNote: 4,
  offsetEraseinfo: 5,
  sizeEraseinfo: 5,
  startPfn64: 6,
  endPfn64: 6,
  maxMapnr64: 6,
};

/** The 8 signature bytes as text (latin1); never throws. */
export function signatureOf(head: Uint8Array): string {
  return Buffer.from(head.buffer, head.byteOffset, Math.min(8, head.length)).toString('latin1');
}

/** True if the first bytes carry a kdump-compressed or diskdump signature. Never throws. */
export function probeKdump(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  const sig = signatureOf(head);
  return sig === KDUMP_SIGNATURE || sig === DISKDUMP_SIGNATURE;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString('latin1', 0, nul < 0 ? b.length : nul);
}

function safe(v: bigint, what: string, file: string | undefined, offset: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new DumpError('DUMP_CORRUPT', `${what} is 0x${BigInt.asUintN(64, v).toString(16)}, beyond 2^53`, { file, offset });
  }
  return Number(v);
}

/** Decode the 464-byte disk_dump_header (`buf` must hold at least that much). */
export function decodeDiskDumpHeader(buf: Uint8Array, file?: string): DiskDumpHeader {
  if (buf.length < DISK_DUMP_HEADER_SIZE) {
    throw new DumpError('DUMP_TRUNCATED', `disk_dump_header needs ${DISK_DUMP_HEADER_SIZE} bytes, have ${buf.length}`, { file, offset: 0 });
  }
  const b = Buffer.from(buf.buffer, buf.byteOffset, DISK_DUMP_HEADER_SIZE);
  const r = diskDumpHeaderParser.parse(b) as RawDiskDumpHeader;
  return {
    signature: r.signature,
    headerVersion: r.headerVersion,
    utsname: {
      sysname: cString(r.sysname),
      nodename: cString(r.nodename),
      release: cString(r.release),
      version: cString(r.version),
      machine: cString(r.machine),
      domainname: cString(r.domainname),
    },
    timestampSec: safe(r.tvSec, 'timestamp.tv_sec', file, DH_OFF.timestamp),
    timestampUsec: safe(r.tvUsec, 'timestamp.tv_usec', file, DH_OFF.timestamp + 8),
    status: r.status,
    blockSize: r.blockSize,
    subHdrSize: r.subHdrSize,
    bitmapBlocks: r.bitmapBlocks,
    maxMapnr: r.maxMapnr,
    totalRamBlocks: r.totalRamBlocks,
    deviceBlocks: r.deviceBlocks,
    writtenBlocks: r.writtenBlocks,
    currentCpu: r.currentCpu,
    nrCpus: r.nrCpus,
  };
}

/**
 * Decode kdump_sub_header as header_version `version` defines it: fields
 * introduced later than `version` are 0. `base` is the file offset of the
 * sub header (for error messages).
 */
export function decodeSubHeader(buf: Uint8Array, version: number, file?: string, base = 0): KdumpSubHeader {
  if (buf.length < KDUMP_SUB_HEADER_SIZE) {
    throw new DumpError('DUMP_TRUNCATED', `kdump_sub_header needs ${KDUMP_SUB_HEADER_SIZE} bytes, have ${buf.length}`, { file, offset: base });
  }
  const r = subHeaderParser.parse(Buffer.from(buf.buffer, buf.byteOffset, KDUMP_SUB_HEADER_SIZE)) as RawSubHeader;
  const out = {} as KdumpSubHeader;
  for (const key of Object.keys(KH_SINCE) as Array<keyof KdumpSubHeader>) {
    if (version < KH_SINCE[key]) {
      out[key] = 0;
      continue;
    }
    const v = r[key];
    out[key] = typeof v === 'number' ? v : safe(v, SUB_NAMES[key], file, base + KH_OFF[key]);
  }
  return out;
}

const SUB_NAMES: { [K in keyof KdumpSubHeader]: string } = {
  physBase: 'phys_base',
  dumpLevel: 'dump_level',
  split: 'split',
  startPfn: 'start_pfn',
  endPfn: 'end_pfn',
  offsetVmcoreinfo: 'offset_vmcoreinfo',
  sizeVmcoreinfo: 'size_vmcoreinfo',
  offsetNote: 'offset_note',
  sizeNote: 'size_note',
  offsetEraseinfo: 'offset_eraseinfo',
  sizeEraseinfo: 'size_eraseinfo',
  startPfn64: 'start_pfn_64',
  endPfn64: 'end_pfn_64',
  maxMapnr64: 'max_mapnr_64',
};

/** C name of a sub-header field (for messages). */
export function subHeaderFieldName(key: keyof KdumpSubHeader): string {
  return SUB_NAMES[key];
}



/** Encode a disk_dump_header (464 bytes; the 6 padding bytes after utsname are zero). */
export function encodeDiskDumpHeader(h: DiskDumpHeader): Uint8Array {
  const b = Buffer.alloc(DISK_DUMP_HEADER_SIZE);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  b.write(h.signature.padEnd(8, ' ').slice(0, 8), DH_OFF.signature, 'latin1');
  dv.setInt32(DH_OFF.headerVersion, h.headerVersion, true);
  const u = h.utsname;
  [u.sysname, u.nodename, u.release, u.version, u.machine, u.domainname].forEach((s, i) => {
    // At most 64 characters: the 65th byte stays NUL.
    b.write(s.slice(0, NEW_UTS_LEN - 1), DH_OFF.utsname + i * NEW_UTS_LEN, 'latin1');
  });
  setI64(dv, DH_OFF.timestamp, h.timestampSec);
  setI64(dv, DH_OFF.timestamp + 8, h.timestampUsec);
  dv.setUint32(DH_OFF.status, h.status, true);
  dv.setInt32(DH_OFF.blockSize, h.blockSize, true);
  dv.setInt32(DH_OFF.subHdrSize, h.subHdrSize, true);
  dv.setUint32(DH_OFF.bitmapBlocks, h.bitmapBlocks, true);
  dv.setUint32(DH_OFF.maxMapnr, h.maxMapnr, true);
  dv.setUint32(DH_OFF.totalRamBlocks, h.totalRamBlocks, true);
  dv.setUint32(DH_OFF.deviceBlocks, h.deviceBlocks, true);
  dv.setUint32(DH_OFF.writtenBlocks, h.writtenBlocks, true);
  dv.setUint32(DH_OFF.currentCpu, h.currentCpu, true);
  dv.setInt32(DH_OFF.nrCpus, h.nrCpus, true);
  return b;
}

/** Encode a kdump_sub_header (104 bytes, every field as given). */
export function encodeSubHeader(s: KdumpSubHeader): Uint8Array {
  const b = new Uint8Array(KDUMP_SUB_HEADER_SIZE);
  const dv = new DataView(b.buffer);
  setI64(dv, KH_OFF.physBase, s.physBase);
  dv.setInt32(KH_OFF.dumpLevel, s.dumpLevel, true);
  dv.setInt32(KH_OFF.split, s.split, true);
  setU64(dv, KH_OFF.startPfn, s.startPfn);
  setU64(dv, KH_OFF.endPfn, s.endPfn);
  setU64(dv, KH_OFF.offsetVmcoreinfo, s.offsetVmcoreinfo);
  setU64(dv, KH_OFF.sizeVmcoreinfo, s.sizeVmcoreinfo);
  setU64(dv, KH_OFF.offsetNote, s.offsetNote);
  setU64(dv, KH_OFF.sizeNote, s.sizeNote);
  setU64(dv, KH_OFF.offsetEraseinfo, s.offsetEraseinfo);
  setU64(dv, KH_OFF.sizeEraseinfo, s.sizeEraseinfo);
  setU64(dv, KH_OFF.startPfn64, s.startPfn64);
  setU64(dv, KH_OFF.endPfn64, s.endPfn64);
  setU64(dv, KH_OFF.maxMapnr64, s.maxMapnr64);
  return b;
}

/** Names of the status bits that are set, e.g. `zlib|incomplete`. */
export function describeStatus(status: number): string {
  const names: string[] = [];
  let known = 0;
  for (const [bit, name] of STATUS_BITS) {
    known |= bit;
    if (status & bit) names.push(name);
  }
  const unknown = (status & ~known) >>> 0;
  if (unknown) names.push(`0x${unknown.toString(16)}`);
  return names.length ? names.join('|') : 'none';
}
