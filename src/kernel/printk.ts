/**
 * The kernel log (printk ring buffer) from VMCOREINFO alone, as
 * makedumpfile --dump-dmesg, crash `log` and drgn's get_printk_records()
 * read it. Two layouts (docs/formats/printk.md has the structures):
 *
 * - The lockless ring buffer, Linux 5.10 and later (kernel commits
 *   b6cf8b3f3312 "printk: add lockless ringbuffer" and 896fbe20b4e2
 *   "printk: use the lockless ringbuffer"): SYMBOL(prb) points to a
 *   struct printk_ringbuffer: a descriptor ring (struct prb_desc: state_var
 *   and the text block's logical positions), a parallel array of struct
 *   printk_info (seq, ts_nsec, text_len, facility, flags/level, caller_id,
 *   dev_info) and a text data ring of blocks `unsigned long id; char text[]`.
 *   Every offset and size comes from VMCOREINFO, so the 5.10 layout (no
 *   last_finalized_id) and the 6.x one read the same way.
 * - The variable-length record buffer, Linux 3.5 to 5.9 (commit
 *   7ff9554bb578 "printk: convert byte-buffer to variable-length record
 *   buffer"): SYMBOL(log_buf) points to a byte array of struct printk_log
 *   headers each followed by text, dictionary and padding; log_first_idx
 *   and log_next_idx bound the live records, and a header with len 0 marks
 *   the wrap to the start of the buffer.
 *
 * Reading is defensive: every index, length and pointer read from the dump
 * is checked, loops are bounded by the buffer's capacity, pages missing
 * from the dump read as zeros, and each kind of damage becomes one warning
 * while the readable records are still returned.
 */
import { DumpError, hex } from '../core/errors.js';
import type { DumpReader } from '../formats/types.js';
import type { VmcoreInfo } from '../formats/vmcoreinfo.js';
import type { X86_64Translator } from './x86_64.js';

export type KernelLogFormat = 'lockless' | 'log_buf';

/** Descriptor states of the lockless ring (kernel/printk/printk_ringbuffer.h, enum desc_state). */
export const DESC_STATE = { reserved: 0, committed: 1, finalized: 2, reusable: 3 } as const;
const STATE_NAMES = ['reserved', 'committed', 'finalized', 'reusable'] as const;
export type DescStateName = (typeof STATE_NAMES)[number];

/** enum log_flags: LOG_NEWLINE 2, LOG_CONT 8 (the same values in both layouts). */
export const LOG_NEWLINE = 2;
export const LOG_CONT = 8;
/** caller_id: bit 31 set = a CPU number (not in task context), else a thread id. */
export const CALLER_CPU_BIT = 0x8000_0000;

export interface KernelLogRecord {
  /** Sequence number; the log_buf layout does not store it (log_first_seq is not in VMCOREINFO). */
  seq: number | undefined;
  /** Timestamp (local_clock() at printk) split into whole seconds and nanoseconds. */
  sec: number;
  nsec: number;
  /** syslog level 0-7 and facility (0 = kernel). */
  level: number;
  facility: number;
  /** enum log_flags bits (LOG_NEWLINE, LOG_CONT, ...). */
  flags: number;
  /** printk caller id (T<pid> or C<cpu>), where the kernel stores it. */
  callerId: number | undefined;
  /** The text as stored (no trailing newline; may hold inner newlines and any byte). */
  text: Uint8Array;
  /** Dictionary (log_buf) or dev_printk_info (lockless) properties: SUBSYSTEM, DEVICE, … */
  dict: Array<[string, string]>;
  /** Descriptor state (lockless only): records still committed were being continued at the crash. */
  state?: DescStateName | undefined;
}

export interface KernelLogBuffer {
  /** Kernel virtual address and size of each buffer the log lives in. */
  regions: Array<{ what: string; vaddr: bigint; size: number }>;
}

export interface KernelLog {
  format: KernelLogFormat;
  records: KernelLogRecord[];
  /**
   * Records written since boot that the dump no longer shows (overwritten,
   * or skipped as unreadable); undefined where the layout cannot tell.
   */
  lost: number | undefined;
  /** Records a writer had reserved but not committed at the crash (not shown). */
  inFlight: number;
  /** One line per kind of damage met; empty for a healthy log. */
  warnings: string[];
  buffer: KernelLogBuffer;
  /** Bytes of the buffers that are not in the dump (read as zeros). */
  missingBytes: number;
}

/** Largest buffer read (a log_buf_len= of 2 GiB is allowed by the kernel, but never seen). */
export const MAX_LOG_BYTES = 256 * 1024 * 1024;
const U64_MASK = (1n << 64n) - 1n;
/** DESC_ID_MASK for 64-bit unsigned long: the top two bits are the state. */
const DESC_ID_MASK = (1n << 62n) - 1n;
/** FAILED_LPOS 0x1 and EMPTY_LINE_LPOS (NO_LPOS before 6.9) 0x3: data-less records (bit 0 set). */
const FAILED_LPOS = 1n;
const EMPTY_LINE_LPOS = 3n;

/** Collects warnings, one line per kind. */
class Warnings {
  private readonly kinds = new Map<string, { n: number; first: string }>();
  add(kind: string, first: string): void {
    const k = this.kinds.get(kind);
    if (k) k.n++;
    else this.kinds.set(kind, { n: 1, first });
  }
  lines(): string[] {
    return [...this.kinds.values()].map((k) => (k.n > 1 ? `${k.first} (and ${k.n - 1} more like it)` : k.first));
  }
}

/** The error of an address the dump does not hold (a page left out, or never mapped). */
function isUnmapped(err: unknown): boolean {
  return err instanceof DumpError && err.code === 'ADDRESS_UNMAPPED';
}

/**
 * Kernel-virtual reads that survive pages missing from the dump: they read
 * as zeros and are counted.
 */
class VirtReader {
  missingBytes = 0;
  constructor(
    private readonly tr: X86_64Translator,
    private readonly reader: DumpReader,
  ) {}

  async read(vaddr: bigint, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const va = vaddr + BigInt(done);
      let piece: { paddr: number; length: number };
      try {
        piece = await this.tr.translate(va);
      } catch (err) {
        if (!isUnmapped(err)) throw err;
        const skip = Math.min(length - done, 4096 - Number(va & 4095n));
        this.missingBytes += skip;
        done += skip;
        continue;
      }
      const n = Math.min(piece.length, length - done);
      try {
        await this.reader.readPhys(piece.paddr, n, out, done);
      } catch (err) {
        if (!isUnmapped(err)) throw err;
        // Some page of the piece is not in the dump: page by page.
        let at = 0;
        while (at < n) {
          const m = Math.min(n - at, 4096 - ((piece.paddr + at) % 4096));
          try {
            await this.reader.readPhys(piece.paddr + at, m, out, done + at);
          } catch (e) {
            if (!isUnmapped(e)) throw e;
            out.fill(0, done + at, done + at + m);
            this.missingBytes += m;
          }
          at += m;
        }
      }
      done += n;
    }
    return out;
  }

  /** Bytes that must all be readable: fails with "WHAT at ADDR is not in the dump" if a page is missing. */
  async readAll(vaddr: bigint, length: number, what: string): Promise<Uint8Array> {
    const before = this.missingBytes;
    const b = await this.read(vaddr, length);
    if (this.missingBytes !== before) throw new DumpError('ADDRESS_UNMAPPED', `${what} at ${hex(vaddr)} is not in the dump`, { file: this.reader.info.file });
    return b;
  }

  /** A pointer or counter that must be readable. */
  async u64(vaddr: bigint, what: string): Promise<bigint> {
    return new DataView((await this.readAll(vaddr, 8, what)).buffer).getBigUint64(0, true);
  }

  async u32(vaddr: bigint, what: string): Promise<number> {
    return new DataView((await this.readAll(vaddr, 4, what)).buffer).getUint32(0, true);
  }
}

/** Which layout this VMCOREINFO describes, or undefined when it has neither. */
export function kernelLogFormat(vi: VmcoreInfo): KernelLogFormat | undefined {
  if (vi.has('SYMBOL(prb)')) return 'lockless';
  if (vi.has('SYMBOL(log_buf)')) return 'log_buf';
  return undefined;
}

function noLogKeys(file: string): DumpError {
  return new DumpError('VMCOREINFO_MISSING', 'VMCOREINFO has neither SYMBOL(prb) nor SYMBOL(log_buf): the kernel log cannot be found', { file });
}

const NEEDED = 'reading the kernel log';

/** Offsets and sizes of the lockless ring, from VMCOREINFO. */
interface PrbLayout {
  rbSize: number;
  descRing: number;
  textRing: number;
  countBits: number;
  descs: number;
  infos: number;
  headId: number;
  tailId: number;
  descSize: number;
  stateVar: number;
  textBlk: number;
  lposBegin: number;
  lposNext: number;
  infoSize: number;
  seq: number;
  ts: number;
  textLen: number;
  callerId: number | undefined;
  devInfo: number | undefined;
  subsystem: number | undefined;
  subsystemLen: number;
  device: number | undefined;
  deviceLen: number;
  sizeBits: number;
  data: number;
  headLpos: number;
  tailLpos: number;
  counter: number;
}

function prbLayout(vi: VmcoreInfo): PrbLayout {
  const off = (k: string): number => vi.requireOffset(k, NEEDED);
  const size = (k: string): number => vi.requireSize(k, NEEDED);
  const devInfo = vi.offset('printk_info.dev_info');
  return {
    rbSize: size('printk_ringbuffer'),
    descRing: off('printk_ringbuffer.desc_ring'),
    textRing: off('printk_ringbuffer.text_data_ring'),
    countBits: off('prb_desc_ring.count_bits'),
    descs: off('prb_desc_ring.descs'),
    infos: off('prb_desc_ring.infos'),
    headId: off('prb_desc_ring.head_id'),
    tailId: off('prb_desc_ring.tail_id'),
    descSize: size('prb_desc'),
    stateVar: off('prb_desc.state_var'),
    textBlk: off('prb_desc.text_blk_lpos'),
    lposBegin: off('prb_data_blk_lpos.begin'),
    lposNext: off('prb_data_blk_lpos.next'),
    infoSize: size('printk_info'),
    seq: off('printk_info.seq'),
    ts: off('printk_info.ts_nsec'),
    textLen: off('printk_info.text_len'),
    callerId: vi.offset('printk_info.caller_id'),
    devInfo,
    subsystem: devInfo === undefined ? undefined : vi.offset('dev_printk_info.subsystem'),
    subsystemLen: vi.length('printk_info_subsystem') ?? 16,
    device: devInfo === undefined ? undefined : vi.offset('dev_printk_info.device'),
    deviceLen: vi.length('printk_info_device') ?? 48,
    sizeBits: off('prb_data_ring.size_bits'),
    data: off('prb_data_ring.data'),
    headLpos: off('prb_data_ring.head_lpos'),
    tailLpos: off('prb_data_ring.tail_lpos'),
    counter: vi.offset('atomic_long_t.counter') ?? 0,
  };
}

interface LogBufLayout {
  hdrSize: number;
  ts: number;
  len: number;
  textLen: number;
  dictLen: number;
  callerId: number | undefined;
}

function logBufLayout(vi: VmcoreInfo): LogBufLayout {
  // 3.11 renamed struct log to struct printk_log; older kernels export SIZE(log).
  const name = vi.has('SIZE(printk_log)') ? 'printk_log' : 'log';
  return {
    hdrSize: vi.requireSize(name, NEEDED),
    ts: vi.requireOffset(`${name}.ts_nsec`, NEEDED),
    len: vi.requireOffset(`${name}.len`, NEEDED),
    textLen: vi.requireOffset(`${name}.text_len`, NEEDED),
    // dict_len is exported since the struct was (3.5); facility and level sit right after it.
    dictLen: vi.requireOffset(`${name}.dict_len`, NEEDED),
    // CONFIG_PRINTK_CALLER, 5.1+ (commit 15ff2069cb7f "printk: Add caller information to printk() output.").
    callerId: vi.offset(`${name}.caller_id`),
  };
}

function checkSize(n: number, what: string, file: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new DumpError('DUMP_CORRUPT', `${what} is ${n} bytes`, { file });
  if (n > MAX_LOG_BYTES) throw new DumpError('DUMP_LIMIT_EXCEEDED', `${what} is ${n} bytes, above the ${MAX_LOG_BYTES / 2 ** 20} MiB a log buffer may have`, { file });
}

function cString(b: Uint8Array, off: number, max: number): string {
  let end = off;
  const lim = Math.min(b.length, off + max);
  while (end < lim && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString('latin1');
}

function splitNs(ts: bigint): { sec: number; nsec: number } {
  return { sec: Number(ts / 1_000_000_000n), nsec: Number(ts % 1_000_000_000n) };
}

/** Read the kernel log of a dump. `tr` translates kernel virtual addresses of that dump. */
export async function readKernelLogFrom(reader: DumpReader, vi: VmcoreInfo, tr: X86_64Translator): Promise<KernelLog> {
  const format = kernelLogFormat(vi);
  if (!format) throw noLogKeys(reader.info.file);
  const vr = new VirtReader(tr, reader);
  const log = format === 'lockless' ? await readLockless(vi, vr, reader.info.file) : await readLogBuf(vi, vr, reader.info.file);
  log.missingBytes = vr.missingBytes;
  if (vr.missingBytes > 0) {
    log.warnings.unshift(`${vr.missingBytes} bytes of the log buffer are not in the dump and read as zeros; records there are lost`);
  }
  return log;
}

// ---------------------------------------------------------------------------
// Lockless ring buffer (5.10+)

interface PrbHeader {
  L: PrbLayout;
  rbAddr: bigint;
  count: number;
  countBits: number;
  descsAddr: bigint;
  infosAddr: bigint;
  headId: bigint;
  tailId: bigint;
  sizeBits: number;
  dataAddr: bigint;
  headLpos: bigint;
  tailLpos: bigint;
}

async function prbHeader(vi: VmcoreInfo, vr: VirtReader, file: string): Promise<PrbHeader> {
  const L = prbLayout(vi);
  const prbSym = vi.requireSymbol('prb', NEEDED);
  // prb is a pointer: &printk_rb_static until setup_log_buf() switches to printk_rb_dynamic.
  const rbAddr = await vr.u64(prbSym, 'the prb pointer');
  const rb = await vr.readAll(rbAddr, L.rbSize, 'struct printk_ringbuffer');
  const dv = new DataView(rb.buffer);
  const at = (o: number, what: string): number => {
    if (o < 0 || o + 8 > rb.length) throw new DumpError('DUMP_CORRUPT', `VMCOREINFO puts ${what} at offset ${o}, outside struct printk_ringbuffer (${rb.length} bytes)`, { file });
    return o;
  };
  const d = L.descRing;
  const t = L.textRing;
  const countBits = dv.getUint32(at(d + L.countBits, 'prb_desc_ring.count_bits'), true);
  const sizeBits = dv.getUint32(at(t + L.sizeBits, 'prb_data_ring.size_bits'), true);
  // The kernel's bounds: descbits = LOG_BUF_SHIFT - PRB_AVGBITS, log_buf_len up to 2 GiB.
  if (countBits < 1 || countBits > 26) throw new DumpError('DUMP_CORRUPT', `printk ring at ${hex(rbAddr)}: desc_ring.count_bits ${countBits} is not in 1..26`, { file });
  if (sizeBits < 4 || sizeBits > 31) throw new DumpError('DUMP_CORRUPT', `printk ring at ${hex(rbAddr)}: text_data_ring.size_bits ${sizeBits} is not in 4..31`, { file });
  const u64 = (o: number, what: string): bigint => dv.getBigUint64(at(o, what), true);
  return {
    L,
    rbAddr,
    count: 2 ** countBits,
    countBits,
    descsAddr: u64(d + L.descs, 'prb_desc_ring.descs'),
    infosAddr: u64(d + L.infos, 'prb_desc_ring.infos'),
    headId: u64(d + L.headId + L.counter, 'prb_desc_ring.head_id') & DESC_ID_MASK,
    tailId: u64(d + L.tailId + L.counter, 'prb_desc_ring.tail_id') & DESC_ID_MASK,
    sizeBits,
    dataAddr: u64(t + L.data, 'prb_data_ring.data'),
    headLpos: u64(t + L.headLpos + L.counter, 'prb_data_ring.head_lpos'),
    tailLpos: u64(t + L.tailLpos + L.counter, 'prb_data_ring.tail_lpos'),
  };
}

async function readLockless(vi: VmcoreInfo, vr: VirtReader, file: string): Promise<KernelLog> {
  const h = await prbHeader(vi, vr, file);
  const warn = new Warnings();
  const walk = new LocklessWalk(h, await readPrbArrays(h, vr, file), warn);
  // Walk ids from the tail to the head, as makedumpfile and drgn do; there are
  // never more live descriptors than the ring holds.
  let span = (h.headId - h.tailId) & DESC_ID_MASK;
  let tail = h.tailId;
  if (span >= BigInt(h.count)) {
    warn.add('span', `descriptor ring tail_id ${hex(h.tailId)} and head_id ${hex(h.headId)} are ${span} apart, more than its ${h.count} descriptors; reading the last ${h.count}`);
    span = BigInt(h.count - 1);
    tail = (h.headId - span) & DESC_ID_MASK;
  }
  for (let k = 0n; k <= span; k++) walk.visit((tail + k) & DESC_ID_MASK);
  const lost = walk.lost();
  return {
    format: 'lockless',
    records: walk.records,
    lost,
    inFlight: walk.inFlight,
    warnings: warn.lines(),
    buffer: { regions: locklessRegions(h) },
    missingBytes: 0,
  };
}

/** The buffers of the lockless ring and their sizes. */
function locklessRegions(h: PrbHeader): KernelLogBuffer['regions'] {
  return [
    { what: 'printk_ringbuffer', vaddr: h.rbAddr, size: h.L.rbSize },
    { what: 'descriptors', vaddr: h.descsAddr, size: h.count * h.L.descSize },
    { what: 'printk_info', vaddr: h.infosAddr, size: h.count * h.L.infoSize },
    { what: 'text data ring', vaddr: h.dataAddr, size: 2 ** h.sizeBits },
  ];
}

/** The descriptor array, the printk_info array and the text data ring, as the dump holds them. */
interface PrbArrays {
  descs: DataView;
  infos: Uint8Array;
  idv: DataView;
  data: Uint8Array;
  tdv: DataView;
  /** Some page of the data ring is not in the dump. */
  dataHoles: boolean;
}

async function readPrbArrays(h: PrbHeader, vr: VirtReader, file: string): Promise<PrbArrays> {
  const L = h.L;
  const dataSize = 2 ** h.sizeBits;
  checkSize(h.count * L.descSize, 'the descriptor array', file);
  checkSize(h.count * L.infoSize, 'the printk_info array', file);
  checkSize(dataSize, 'the text data ring', file);
  const descs = await vr.read(h.descsAddr, h.count * L.descSize);
  const infos = await vr.read(h.infosAddr, h.count * L.infoSize);
  const missingBefore = vr.missingBytes;
  const data = await vr.read(h.dataAddr, dataSize);
  return {
    descs: new DataView(descs.buffer),
    infos,
    idv: new DataView(infos.buffer),
    data,
    tdv: new DataView(data.buffer),
    dataHoles: vr.missingBytes !== missingBefore,
  };
}

/**
 * The records of the lockless ring, one descriptor id at a time, as
 * prb_read_valid() would take them, with the counts the summary needs.
 */
class LocklessWalk {
  readonly records: KernelLogRecord[] = [];
  /** Records reserved but not committed. */
  inFlight = 0;
  /** Descriptors whose record could not be read (reused slot, bad block). */
  private unreadable = 0;
  /** Sequence numbers of the reserved records. */
  private readonly reservedSeqs: number[] = [];
  private readonly L: PrbLayout;
  private readonly countMask: bigint;
  private readonly dataSize: number;
  private readonly sizeBits: bigint;

  constructor(
    h: PrbHeader,
    private readonly a: PrbArrays,
    private readonly warn: Warnings,
  ) {
    this.L = h.L;
    this.countMask = BigInt(h.count - 1);
    this.dataSize = 2 ** h.sizeBits;
    this.sizeBits = BigInt(h.sizeBits);
  }

  /** The descriptor of `id`: a record, an in-flight one, or nothing readable. */
  visit(id: bigint): void {
    const { L, a } = this;
    const idx = Number(id & this.countMask);
    const dOff = idx * L.descSize;
    const iOff = idx * L.infoSize;
    const sv = a.descs.getBigUint64(dOff + L.stateVar + L.counter, true);
    const state = Number(sv >> 62n);
    if ((sv & DESC_ID_MASK) !== id) {
      // desc_miss: the slot belongs to another id (being reused at the crash, or damaged).
      this.unreadable++;
      return;
    }
    if (state === DESC_STATE.reserved) {
      // prb_reserve() sets the sequence number before the text is written.
      this.inFlight++;
      this.reservedSeqs.push(Number(a.idv.getBigUint64(iOff + L.seq, true)));
      return;
    }
    if (state === DESC_STATE.reusable) return;
    const seq = Number(a.idv.getBigUint64(iOff + L.seq, true));
    const begin = a.descs.getBigUint64(dOff + L.textBlk + L.lposBegin, true);
    const next = a.descs.getBigUint64(dOff + L.textBlk + L.lposNext, true);
    const text = this.text(id, seq, begin, next, a.idv.getUint16(iOff + L.textLen, true));
    if (text === undefined) {
      this.unreadable++;
      return;
    }
    this.records.push(this.record(iOff, seq, text, state));
  }

  /** The text of record `seq` from its block [begin, next) (get_data()), or undefined with a warning. */
  private text(id: bigint, seq: number, begin: bigint, next: bigint, textLen: number): Uint8Array | undefined {
    const { warn, dataSize } = this;
    if ((begin & 1n) === 1n && (next & 1n) === 1n) {
      // Data-less record: an empty line, or a record whose text could not be stored.
      if (begin === EMPTY_LINE_LPOS && next === EMPTY_LINE_LPOS) return new Uint8Array(0);
      if (begin !== FAILED_LPOS || next !== FAILED_LPOS) warn.add('lpos', `record ${seq}: data-less block positions ${hex(begin)}/${hex(next)} are not FAILED_LPOS or EMPTY_LINE_LPOS`);
      return undefined;
    }
    // A regular block lies within one wrap; a wrapping block keeps its data at index 0.
    const sizeBig = BigInt(dataSize);
    const wraps = (lpos: bigint): bigint => lpos >> this.sizeBits;
    let off: number;
    let size: number;
    if (wraps(begin) === wraps(next) && begin < next) {
      off = Number(begin & (sizeBig - 1n));
      size = Number(next - begin);
    } else if (wraps((begin + sizeBig) & U64_MASK) === wraps(next)) {
      off = 0;
      size = Number(next & (sizeBig - 1n));
    } else {
      warn.add('block', `record ${seq}: text block ${hex(begin)}..${hex(next)} does not lie in the ${dataSize}-byte data ring`);
      return undefined;
    }
    if (begin % 8n !== 0n || next % 8n !== 0n || size < 8 || size > dataSize || off + size > dataSize) {
      warn.add('block', `record ${seq}: text block ${hex(begin)}..${hex(next)} is misaligned or out of the data ring`);
      return undefined;
    }
    const blkId = this.a.tdv.getBigUint64(off, true) & DESC_ID_MASK;
    if (blkId !== id) {
      // Blocks in pages missing from the dump fail this check; the missing-bytes warning says why.
      if (!this.a.dataHoles) warn.add('blkid', `record ${seq}: its text block holds descriptor id ${hex(blkId)}, not ${hex(id)} (overwritten)`);
      return undefined;
    }
    let len = textLen;
    if (len > size - 8) {
      warn.add('textlen', `record ${seq}: text_len ${textLen} is longer than its ${size - 8}-byte block; text cut`);
      len = size - 8;
    }
    return this.a.data.slice(off + 8, off + 8 + len);
  }

  /** The record of the printk_info at iOff. */
  private record(iOff: number, seq: number, text: Uint8Array, state: number): KernelLogRecord {
    const { L, a } = this;
    const idv = a.idv;
    // facility and the flags:5/level:3 bit-field byte follow text_len (struct printk_info; not exported).
    const fl = idv.getUint8(iOff + L.textLen + 3);
    const dict: Array<[string, string]> = [];
    if (L.devInfo !== undefined) {
      if (L.subsystem !== undefined) {
        const s = cString(a.infos, iOff + L.devInfo + L.subsystem, L.subsystemLen);
        if (s) dict.push(['SUBSYSTEM', s]);
      }
      if (L.device !== undefined) {
        const s = cString(a.infos, iOff + L.devInfo + L.device, L.deviceLen);
        if (s) dict.push(['DEVICE', s]);
      }
    }
    return {
      seq,
      ...splitNs(idv.getBigUint64(iOff + L.ts, true)),
      level: fl >> 5,
      facility: idv.getUint8(iOff + L.textLen + 2),
      flags: fl & 0x1f,
      callerId: L.callerId === undefined ? undefined : idv.getUint32(iOff + L.callerId, true),
      text,
      dict,
      state: STATE_NAMES[state],
    };
  }

  /**
   * Records lost since boot: the gaps in the sequence numbers (which count
   * every record since boot, the first being 0), less the reserved records
   * sitting in them. Call once, after the walk.
   */
  lost(): number {
    let lost = 0;
    let expect = 0;
    let disorder = false;
    for (const r of this.records) {
      const s = r.seq!;
      if (s < expect) disorder = true;
      else lost += s - expect;
      expect = s + 1;
    }
    for (const s of this.reservedSeqs) if (s < expect) lost--;
    if (disorder) this.warn.add('seq', 'sequence numbers of the records are not increasing; the count of lost records is a guess');
    lost = Math.max(0, lost);
    return this.records.length === 0 ? this.unreadable : lost;
  }
}

// ---------------------------------------------------------------------------
// Variable-length record buffer (3.5–5.9)

interface LogBufHeader {
  L: LogBufLayout;
  bufAddr: bigint;
  bufLen: number;
  firstIdx: number;
  nextIdx: number;
}

async function logBufHeader(vi: VmcoreInfo, vr: VirtReader, file: string): Promise<LogBufHeader> {
  const L = logBufLayout(vi);
  const bufAddr = await vr.u64(vi.requireSymbol('log_buf', NEEDED), 'the log_buf pointer');
  // static u32 log_buf_len, log_first_idx, log_next_idx.
  const bufLen = await vr.u32(vi.requireSymbol('log_buf_len', NEEDED), 'log_buf_len');
  const firstIdx = await vr.u32(vi.requireSymbol('log_first_idx', NEEDED), 'log_first_idx');
  const nextIdx = await vr.u32(vi.requireSymbol('log_next_idx', NEEDED), 'log_next_idx');
  checkSize(bufLen, 'log_buf_len', file);
  if (L.hdrSize < 12 || L.hdrSize > 64) throw new DumpError('DUMP_CORRUPT', `SIZE(printk_log) ${L.hdrSize} is not a record header size`, { file });
  return { L, bufAddr, bufLen, firstIdx, nextIdx };
}

async function readLogBuf(vi: VmcoreInfo, vr: VirtReader, file: string): Promise<KernelLog> {
  const h = await logBufHeader(vi, vr, file);
  const { L, bufLen } = h;
  const warn = new Warnings();
  const buf = await vr.read(h.bufAddr, bufLen);
  const dv = new DataView(buf.buffer);
  const records: KernelLogRecord[] = [];
  const region = { regions: [{ what: 'log_buf', vaddr: h.bufAddr, size: bufLen }] };
  const done = (): KernelLog => ({ format: 'log_buf', records, lost: undefined, inFlight: 0, warnings: warn.lines(), buffer: region, missingBytes: 0 });
  if (h.firstIdx > bufLen - Math.min(bufLen, L.hdrSize) || h.nextIdx > bufLen) {
    warn.add('idx', `log_first_idx ${h.firstIdx} or log_next_idx ${h.nextIdx} is outside the ${bufLen}-byte log_buf`);
    return done();
  }
  // The walk of log_from_idx()/log_next(): at most one wrap, and never more
  // records than headers fit in the buffer.
  let idx = h.firstIdx;
  let wrapped = false;
  const maxRecords = Math.floor(bufLen / L.hdrSize) + 1;
  while (idx !== h.nextIdx) {
    if (records.length >= maxRecords) {
      warn.add('loop', `log_buf records loop without reaching log_next_idx ${h.nextIdx}`);
      break;
    }
    if (idx + L.hdrSize > bufLen) {
      warn.add('idx', `log_buf record at index ${idx} runs past the ${bufLen}-byte buffer`);
      break;
    }
    const len = dv.getUint16(idx + L.len, true);
    if (len === 0) {
      // The end-of-buffer marker: the next record is at the start.
      if (wrapped) {
        warn.add('loop', `log_buf wraps twice (index ${idx}) without reaching log_next_idx ${h.nextIdx}`);
        break;
      }
      if (h.firstIdx < h.nextIdx) {
        // The live records are [first, next) without a wrap: a marker there is damage.
        warn.add('loop', `log_buf has an end-of-buffer marker at index ${idx}, inside the unwrapped records ${h.firstIdx}..${h.nextIdx}`);
        break;
      }
      wrapped = true;
      idx = 0;
      continue;
    }
    const textLen = dv.getUint16(idx + L.textLen, true);
    const dictLen = dv.getUint16(idx + L.dictLen, true);
    if (len < L.hdrSize || idx + len > bufLen || L.hdrSize + textLen + dictLen > len) {
      warn.add('len', `log_buf record at index ${idx}: length ${len} (text ${textLen}, dict ${dictLen}) does not fit the buffer`);
      break;
    }
    if ((wrapped || h.nextIdx > h.firstIdx) && idx < h.nextIdx && idx + len > h.nextIdx) {
      warn.add('loop', `log_buf record at index ${idx} (length ${len}) steps over log_next_idx ${h.nextIdx}`);
      break;
    }
    records.push(logBufRecord(buf, dv, idx, L, textLen, dictLen));
    idx += len;
    if (idx === bufLen && idx !== h.nextIdx) {
      // A record ending exactly at the buffer's end: the kernel wraps before
      // writing there, so the next record is at the start (no marker fits).
      if (wrapped) {
        warn.add('loop', `log_buf wraps twice without reaching log_next_idx ${h.nextIdx}`);
        break;
      }
      wrapped = true;
      idx = 0;
    }
  }
  return done();
}

/** The struct printk_log record at idx: its header, text and dictionary (KEY=VALUE strings separated by NULs). */
function logBufRecord(buf: Uint8Array, dv: DataView, idx: number, L: LogBufLayout, textLen: number, dictLen: number): KernelLogRecord {
  const textAt = idx + L.hdrSize;
  const dict: Array<[string, string]> = [];
  if (dictLen > 0) {
    const s = Buffer.from(buf.buffer, textAt + textLen, dictLen).toString('latin1');
    for (const kv of s.split('\0')) {
      if (!kv) continue;
      const eq = kv.indexOf('=');
      dict.push(eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)]);
    }
  }
  // facility and the flags:5/level:3 bit-field byte follow dict_len.
  const fl = dv.getUint8(idx + L.dictLen + 3);
  return {
    seq: undefined,
    ...splitNs(dv.getBigUint64(idx + L.ts, true)),
    level: fl >> 5,
    facility: dv.getUint8(idx + L.dictLen + 2),
    flags: fl & 0x1f,
    callerId: L.callerId === undefined ? undefined : dv.getUint32(idx + L.callerId, true),
    text: buf.slice(textAt, textAt + textLen),
    dict,
  };
}

// ---------------------------------------------------------------------------
// Where the log lives (for protecting it from exclusion)

/**
 * Physical pfn ranges holding the kernel log: the ring structures and the
 * buffers they point to (or log_buf and its indices). Missing keys or
 * unreadable pointers give the ranges that could be found.
 */
export async function kernelLogPfnRanges(reader: DumpReader, vi: VmcoreInfo, tr: X86_64Translator): Promise<Array<{ start: number; end: number }>> {
  const format = kernelLogFormat(vi);
  if (!format) return [];
  const vr = new VirtReader(tr, reader);
  const file = reader.info.file;
  const regions: Array<{ vaddr: bigint; size: number }> = [];
  if (format === 'lockless') {
    const prb = vi.symbol('prb');
    if (prb !== undefined) regions.push({ vaddr: prb, size: 8 });
    regions.push(...locklessRegions(await prbHeader(vi, vr, file)));
  } else {
    for (const s of ['log_buf', 'log_buf_len', 'log_first_idx', 'log_next_idx']) {
      const a = vi.symbol(s);
      if (a !== undefined) regions.push({ vaddr: a, size: 8 });
    }
    const h = await logBufHeader(vi, vr, file);
    regions.push({ vaddr: h.bufAddr, size: h.bufLen });
  }
  const out: Array<{ start: number; end: number }> = [];
  for (const r of regions) {
    if (r.size <= 0 || r.size > MAX_LOG_BYTES) continue;
    for (let done = 0; done < r.size; ) {
      const va = r.vaddr + BigInt(done);
      try {
        const p = await tr.translate(va);
        const n = Math.min(p.length, r.size - done);
        out.push({ start: Math.floor(p.paddr / 4096), end: Math.ceil((p.paddr + n) / 4096) });
        done += n;
      } catch (err) {
        if (!isUnmapped(err)) throw err;
        done += 4096 - Number(va & 4095n);
      }
    }
  }
  return out;
}
