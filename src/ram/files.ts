/**
 * Hypervisor-side inputs of the RAM-oracle models, as text files
 * (docs/formats/oracle-inputs.md): what the kernel's vmcore pfn_is_ram
 * callbacks would learn from the hypervisor.
 *
 *   dumpsieve-xen-hvm-memtypes 1   HVMOP_get_mem_type per pfn run (Xen HVM/PVH)
 *   dumpsieve-xen-pv-p2m 1         the P2M of a Xen PV guest
 *   dumpsieve-virtio-mem 1         virtio-mem devices and their plugged blocks
 *   dumpsieve-backed-ranges 1      pfn runs the hypervisor backs (any hypervisor)
 *
 * Every file starts with its magic and version, then one record per line;
 * `#` starts a comment line; numbers are hex with 0x (decimal accepted).
 * Parsers check that runs are sorted, do not overlap and stay within
 * bounds, and report InputError with the file and line.
 */
import { InputError } from '../core/errors.js';
import { readLines, textLines, type TextLine } from '../io/lines.js';

/** Pfns and mfns beyond 2^40 are refused (2^52 bytes of 4 KiB pages). */
export const MAX_PFN = 2 ** 40;
/** Largest side file read (bytes): read as a stream, never whole. */
export const MAX_FILE_BYTES = 64 * 2 ** 20;
/** Most records (runs, devices, ranges) a file may hold: their tables stay well below 200 MB. */
export const MAX_RECORDS = 1 << 20;

// ---------------------------------------------------------------------------
// Shared text handling

interface Line {
  no: number;
  fields: string[];
}

/** One format's record parser: fed the records after the magic line, then asked for the result. */
interface FormatParser<T> {
  record(l: Line): void;
  end(): T;
}

/**
 * Feed the lines of a side file to a parser: the first line must be
 * `MAGIC VERSION`; blank and `#` lines are skipped; at most MAX_RECORDS
 * records. Stops at the first error (the parser's or the limits').
 */
class Feeder<T> {
  private records = 0;
  private started = false;
  constructor(
    private readonly file: string,
    private readonly magic: string,
    private readonly version: number,
    private readonly parser: FormatParser<T>,
  ) {}

  line(l: TextLine): void {
    const { file, magic, version } = this;
    if (!this.started) {
      this.started = true;
      const m = /^(\S+)\s+(\d+)$/.exec(l.text.trim());
      if (!m || m[1] !== magic) throw new InputError(`not a ${magic} file (first line must be '${magic} ${version}')`, { file, line: 1 });
      if (Number(m[2]) !== version) throw new InputError(`${magic} version ${m[2]} is not supported (this build reads version ${version})`, { file, line: 1 });
      return;
    }
    const t = l.text.trim();
    if (t === '' || t.startsWith('#')) return;
    if (++this.records > MAX_RECORDS) throw new InputError(`more than ${MAX_RECORDS} records`, { file, line: l.no });
    this.parser.record({ no: l.no, fields: t.split(/\s+/) });
  }

  end(): T {
    if (!this.started) throw new InputError(`not a ${this.magic} file (first line must be '${this.magic} ${this.version}')`, { file: this.file, line: 1 });
    return this.parser.end();
  }
}

function parseText<T>(text: string, file: string, magic: string, version: number, parser: FormatParser<T>): T {
  const f = new Feeder(file, magic, version, parser);
  for (const l of textLines(text)) f.line(l);
  return f.end();
}

async function readParsed<T>(path: string, what: string, magic: string, version: number, parser: FormatParser<T>): Promise<T> {
  const f = new Feeder(path, magic, version, parser);
  for await (const l of readLines(path, { what, maxBytes: MAX_FILE_BYTES })) f.line(l);
  return f.end();
}

function num(s: string | undefined, what: string, file: string, line: number, max = MAX_PFN): number {
  if (s === undefined) throw new InputError(`missing ${what}`, { file, line });
  let v: number;
  if (/^0[xX][0-9a-fA-F]{1,14}$/.test(s)) v = Number.parseInt(s.slice(2), 16);
  else if (/^\d{1,16}$/.test(s)) v = Number(s);
  else throw new InputError(`${what} '${s}' is not a number`, { file, line });
  if (!Number.isSafeInteger(v) || v > max) throw new InputError(`${what} ${s} is above the limit 0x${max.toString(16)}`, { file, line });
  return v;
}

function arity(l: Line, min: number, max: number, file: string, shape: string): void {
  if (l.fields.length < min || l.fields.length > max) {
    throw new InputError(`expected '${shape}', got ${l.fields.length} field${l.fields.length === 1 ? '' : 's'}`, { file, line: l.no });
  }
}

const hx = (n: number): string => `0x${n.toString(16)}`;

/** A pfn run with a value. */
export interface ValueRun<T> {
  start: number;
  count: number;
  value: T;
}

/**
 * The run holding `pfn` in sorted, non-overlapping runs, as the value and
 * how many pfns from `pfn` share it (never beyond `limit`); pfns between
 * runs get `fallback`.
 */
export function lookupRun<T>(runs: readonly ValueRun<T>[], pfn: number, limit: number, fallback: T): { value: T; count: number } {
  const idx = runIndex(runs, pfn);
  if (idx >= 0) {
    const r = runs[idx]!;
    if (pfn < r.start + r.count) return { value: r.value, count: Math.max(1, Math.min(limit, r.start + r.count) - pfn) };
  }
  const next = runs[idx + 1];
  const end = next ? Math.min(next.start, limit) : limit;
  return { value: fallback, count: Math.max(1, end - pfn) };
}

/** Index of the last run starting at or before pfn, or -1. */
export function runIndex(runs: readonly { start: number }[], pfn: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  let idx = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid]!.start <= pfn) {
      idx = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return idx;
}

function checkOrder(prevEnd: number, start: number, count: number, file: string, line: number): number {
  if (count <= 0) throw new InputError(`run at ${hx(start)} has count ${count}`, { file, line });
  if (start < prevEnd) {
    throw new InputError(`run at ${hx(start)} overlaps or precedes the previous run (which ends at ${hx(prevEnd)}); runs must be sorted and disjoint`, { file, line });
  }
  const end = start + count;
  if (end > MAX_PFN) throw new InputError(`run ${hx(start)}+${hx(count)} ends beyond pfn ${hx(MAX_PFN)}`, { file, line });
  return end;
}

// ---------------------------------------------------------------------------
// Xen HVM memory types

export const XEN_HVM_MAGIC = 'dumpsieve-xen-hvm-memtypes';
/** enum hvmmem_type_t (xen/include/public/hvm/hvm_op.h). */
export const HVMMEM_TYPES = ['ram_rw', 'ram_ro', 'mmio_dm'] as const;
export type HvmMemType = (typeof HVMMEM_TYPES)[number];

/** A type, or `error`: HVMOP_get_mem_type fails for these pfns (the kernel then counts them as RAM). */
export type HvmMemAnswer = HvmMemType | 'error';

export interface XenHvmMemTypes {
  /** Sorted, disjoint; pfns not covered are mmio_dm. */
  runs: ValueRun<HvmMemAnswer>[];
}

function xenHvmParser(file: string): FormatParser<XenHvmMemTypes> {
  const runs: ValueRun<HvmMemAnswer>[] = [];
  let prevEnd = 0;
  const record = (l: Line): void => {
    arity(l, 3, 3, file, 'START COUNT TYPE');
    const start = num(l.fields[0], 'start pfn', file, l.no);
    const count = num(l.fields[1], 'count', file, l.no);
    const type = l.fields[2] as HvmMemAnswer;
    if (type !== 'error' && !HVMMEM_TYPES.includes(type)) {
      throw new InputError(`memory type '${l.fields[2]}' is not one of ${HVMMEM_TYPES.join(', ')}, error`, { file, line: l.no });
    }
    prevEnd = checkOrder(prevEnd, start, count, file, l.no);
    runs.push({ start, count, value: type });
  };
  return { record, end: () => ({ runs }) };
}

export function parseXenHvmMemTypes(text: string, file: string): XenHvmMemTypes {
  return parseText(text, file, XEN_HVM_MAGIC, 1, xenHvmParser(file));
}

export function formatXenHvmMemTypes(d: XenHvmMemTypes, comment?: string): string {
  const out = [`${XEN_HVM_MAGIC} 1`];
  if (comment) out.push(...comment.split('\n').map((c) => `# ${c}`));
  out.push('# START COUNT TYPE: HVMOP_get_mem_type for pfns [START, START+COUNT); pfns not listed are mmio_dm');
  for (const r of d.runs) out.push(`${hx(r.start)} ${hx(r.count)} ${r.value}`);
  return `${out.join('\n')}\n`;
}

export async function readXenHvmMemTypes(path: string): Promise<XenHvmMemTypes> {
  return readParsed(path, 'Xen HVM memory-type file', XEN_HVM_MAGIC, 1, xenHvmParser(path));
}

/** The type Xen reports for pfn, and for how many pfns it holds. */
export function hvmMemTypeAt(d: XenHvmMemTypes, pfn: number, limit: number): { value: HvmMemAnswer; count: number } {
  return lookupRun(d.runs, pfn, limit, 'mmio_dm');
}

// ---------------------------------------------------------------------------
// Xen PV P2M

export const XEN_PV_MAGIC = 'dumpsieve-xen-pv-p2m';

/** A P2M entry kind: a machine frame, INVALID_P2M_ENTRY (~0), or IDENTITY_FRAME(pfn). */
export type P2mEntry = { kind: 'mfn'; mfn: number } | { kind: 'invalid' } | { kind: 'identity' };

export interface XenPvP2m {
  /** xen_p2m_size: pfns at or beyond it are identity frames (__pfn_to_mfn). */
  p2mSize: number;
  /** Sorted, disjoint; pfns below p2mSize not covered are INVALID_P2M_ENTRY (missing P2M leaves). */
  runs: ValueRun<P2mEntry>[];
}

function xenPvParser(file: string): FormatParser<XenPvP2m> {
  const runs: ValueRun<P2mEntry>[] = [];
  let p2mSize: number | undefined;
  let prevEnd = 0;
  const record = (l: Line): void => {
    if (l.fields[0] === 'p2m-size') {
      arity(l, 2, 2, file, 'p2m-size N');
      if (p2mSize !== undefined) throw new InputError('p2m-size given twice', { file, line: l.no });
      if (runs.length) throw new InputError('p2m-size must come before the runs', { file, line: l.no });
      p2mSize = num(l.fields[1], 'p2m-size', file, l.no);
      return;
    }
    if (p2mSize === undefined) throw new InputError("missing 'p2m-size N' before the first run", { file, line: l.no });
    const kind = l.fields[2];
    const start = num(l.fields[0], 'start pfn', file, l.no);
    const count = num(l.fields[1], 'count', file, l.no);
    let entry: P2mEntry;
    if (kind === 'mfn') {
      arity(l, 4, 4, file, 'START COUNT mfn MFN');
      const mfn = num(l.fields[3], 'mfn', file, l.no);
      if (mfn + count > MAX_PFN) throw new InputError(`mfns ${hx(mfn)}+${hx(count)} run beyond ${hx(MAX_PFN)}`, { file, line: l.no });
      entry = { kind: 'mfn', mfn };
    } else if (kind === 'invalid' || kind === 'identity') {
      arity(l, 3, 3, file, `START COUNT ${kind}`);
      entry = { kind };
    } else {
      throw new InputError(`P2M kind '${kind ?? ''}' is not mfn, invalid or identity`, { file, line: l.no });
    }
    prevEnd = checkOrder(prevEnd, start, count, file, l.no);
    if (prevEnd > p2mSize) throw new InputError(`run ${hx(start)}+${hx(count)} goes past p2m-size ${hx(p2mSize)}`, { file, line: l.no });
    runs.push({ start, count, value: entry });
  };
  const end = (): XenPvP2m => {
    if (p2mSize === undefined) throw new InputError("missing 'p2m-size N'", { file });
    return { p2mSize, runs };
  };
  return { record, end };
}

export function parseXenPvP2m(text: string, file: string): XenPvP2m {
  return parseText(text, file, XEN_PV_MAGIC, 1, xenPvParser(file));
}

export function formatXenPvP2m(d: XenPvP2m, comment?: string): string {
  const out = [`${XEN_PV_MAGIC} 1`];
  if (comment) out.push(...comment.split('\n').map((c) => `# ${c}`));
  out.push(`p2m-size ${hx(d.p2mSize)}`);
  out.push('# START COUNT mfn MFN | invalid | identity; pfns not listed below p2m-size are invalid, at or above it identity');
  for (const r of d.runs) {
    const v = r.value;
    out.push(v.kind === 'mfn' ? `${hx(r.start)} ${hx(r.count)} mfn ${hx(v.mfn)}` : `${hx(r.start)} ${hx(r.count)} ${v.kind}`);
  }
  return `${out.join('\n')}\n`;
}

export async function readXenPvP2m(path: string): Promise<XenPvP2m> {
  return readParsed(path, 'Xen PV P2M file', XEN_PV_MAGIC, 1, xenPvParser(path));
}

/** The P2M entry of pfn (an mfn entry gives the mfn of pfn itself) and for how many pfns its kind holds. */
export function p2mAt(d: XenPvP2m, pfn: number, limit: number): { value: P2mEntry; count: number } {
  if (pfn >= d.p2mSize) return { value: { kind: 'identity' }, count: Math.max(1, limit - pfn) };
  const r = lookupRun<P2mEntry>(d.runs, pfn, Math.min(limit, d.p2mSize), { kind: 'invalid' });
  if (r.value.kind !== 'mfn') return r;
  const run = d.runs[runIndex(d.runs, pfn)]!;
  return { value: { kind: 'mfn', mfn: r.value.mfn + (pfn - run.start) }, count: r.count };
}

// ---------------------------------------------------------------------------
// virtio-mem

export const VIRTIO_MEM_MAGIC = 'dumpsieve-virtio-mem';

export interface VirtioMemDevice {
  id: number;
  /** Guest-physical byte address and size of the device's memory region. */
  addr: number;
  size: number;
  /** Device block size (bytes, a power of two, at least 4096). */
  blockSize: number;
  /** Plugged byte ranges, block-aligned, sorted, disjoint, inside the region. */
  plugged: Array<{ addr: number; size: number }>;
  /** Byte ranges whose state request fails (the kernel then counts them as not RAM). */
  errors?: Array<{ addr: number; size: number }> | undefined;
}

export interface VirtioMemState {
  devices: VirtioMemDevice[];
}

const MAX_ADDR = MAX_PFN * 4096;

function virtioMemParser(file: string): FormatParser<VirtioMemState> {
  const devices: VirtioMemDevice[] = [];
  const byId = new Map<number, VirtioMemDevice>();
  const record = (l: Line): void => {
    const kw = l.fields[0];
    if (kw === 'device') {
      arity(l, 5, 5, file, 'device ID ADDR SIZE BLOCK-SIZE');
      const id = num(l.fields[1], 'device id', file, l.no, 0xffff);
      const addr = num(l.fields[2], 'address', file, l.no, MAX_ADDR);
      const size = num(l.fields[3], 'size', file, l.no, MAX_ADDR);
      const blockSize = num(l.fields[4], 'block size', file, l.no, 2 ** 40);
      if (byId.has(id)) throw new InputError(`device ${id} declared twice`, { file, line: l.no });
      if (blockSize < 4096 || !Number.isInteger(Math.log2(blockSize))) {
        throw new InputError(`block size ${hx(blockSize)} is not a power of two of at least 4096`, { file, line: l.no });
      }
      if (addr % blockSize !== 0 || size % blockSize !== 0 || size === 0) {
        throw new InputError(`region ${hx(addr)}+${hx(size)} is not a non-empty multiple of the block size ${hx(blockSize)}`, { file, line: l.no });
      }
      if (addr + size > MAX_ADDR) throw new InputError(`region ${hx(addr)}+${hx(size)} ends beyond ${hx(MAX_ADDR)}`, { file, line: l.no });
      for (const d of devices) {
        if (addr < d.addr + d.size && d.addr < addr + size) throw new InputError(`region of device ${id} overlaps device ${d.id}`, { file, line: l.no });
      }
      const dev: VirtioMemDevice = { id, addr, size, blockSize, plugged: [] };
      devices.push(dev);
      byId.set(id, dev);
    } else if (kw === 'plugged' || kw === 'error') {
      arity(l, 4, 4, file, `${kw} ID ADDR SIZE`);
      const id = num(l.fields[1], 'device id', file, l.no, 0xffff);
      const dev = byId.get(id);
      if (!dev) throw new InputError(`${kw} range for undeclared device ${id}`, { file, line: l.no });
      const addr = num(l.fields[2], 'address', file, l.no, MAX_ADDR);
      const size = num(l.fields[3], 'size', file, l.no, MAX_ADDR);
      if (size === 0 || addr % dev.blockSize !== 0 || size % dev.blockSize !== 0) {
        throw new InputError(`${kw} range ${hx(addr)}+${hx(size)} is not whole blocks of ${hx(dev.blockSize)}`, { file, line: l.no });
      }
      if (addr < dev.addr || addr + size > dev.addr + dev.size) {
        throw new InputError(`${kw} range ${hx(addr)}+${hx(size)} is outside device ${id}'s region`, { file, line: l.no });
      }
      const list = kw === 'plugged' ? dev.plugged : (dev.errors ??= []);
      const last = list[list.length - 1];
      if (last && addr < last.addr + last.size) throw new InputError(`${kw} range ${hx(addr)} overlaps or precedes the previous one of device ${id}`, { file, line: l.no });
      list.push({ addr, size });
    } else {
      throw new InputError(`unknown record '${kw ?? ''}' (device, plugged or error)`, { file, line: l.no });
    }
  };
  return { record, end: () => ({ devices }) };
}

export function parseVirtioMem(text: string, file: string): VirtioMemState {
  return parseText(text, file, VIRTIO_MEM_MAGIC, 1, virtioMemParser(file));
}

export function formatVirtioMem(d: VirtioMemState, comment?: string): string {
  const out = [`${VIRTIO_MEM_MAGIC} 1`];
  if (comment) out.push(...comment.split('\n').map((c) => `# ${c}`));
  out.push('# device ID ADDR SIZE BLOCK-SIZE / plugged ID ADDR SIZE (bytes); unplugged blocks are not RAM');
  for (const dev of d.devices) {
    out.push(`device ${dev.id} ${hx(dev.addr)} ${hx(dev.size)} ${hx(dev.blockSize)}`);
    for (const p of dev.plugged) out.push(`plugged ${dev.id} ${hx(p.addr)} ${hx(p.size)}`);
    for (const p of dev.errors ?? []) out.push(`error ${dev.id} ${hx(p.addr)} ${hx(p.size)}`);
  }
  return `${out.join('\n')}\n`;
}

export async function readVirtioMem(path: string): Promise<VirtioMemState> {
  return readParsed(path, 'virtio-mem state file', VIRTIO_MEM_MAGIC, 1, virtioMemParser(path));
}

// ---------------------------------------------------------------------------
// Generic backed ranges

export const BACKED_MAGIC = 'dumpsieve-backed-ranges';

export interface BackedRanges {
  /** Sorted, disjoint pfn runs the hypervisor backs; everything else is not backed. */
  runs: Array<{ start: number; count: number }>;
}

function backedParser(file: string): FormatParser<BackedRanges> {
  const runs: Array<{ start: number; count: number }> = [];
  let prevEnd = 0;
  const record = (l: Line): void => {
    arity(l, 2, 2, file, 'START COUNT');
    const start = num(l.fields[0], 'start pfn', file, l.no);
    const count = num(l.fields[1], 'count', file, l.no);
    prevEnd = checkOrder(prevEnd, start, count, file, l.no);
    runs.push({ start, count });
  };
  return { record, end: () => ({ runs }) };
}

export function parseBackedRanges(text: string, file: string): BackedRanges {
  return parseText(text, file, BACKED_MAGIC, 1, backedParser(file));
}

export function formatBackedRanges(d: BackedRanges, comment?: string): string {
  const out = [`${BACKED_MAGIC} 1`];
  if (comment) out.push(...comment.split('\n').map((c) => `# ${c}`));
  out.push('# START COUNT: pfns [START, START+COUNT) are backed by RAM; pfns not listed are not');
  for (const r of d.runs) out.push(`${hx(r.start)} ${hx(r.count)}`);
  return `${out.join('\n')}\n`;
}

export async function readBackedRanges(path: string): Promise<BackedRanges> {
  return readParsed(path, 'backed-ranges file', BACKED_MAGIC, 1, backedParser(path));
}
