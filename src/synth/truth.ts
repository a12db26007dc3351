/**
 * The truth manifest of a synthetic guest (docs/formats/truth.md): the
 * true state of every pfn from 0 to max-pfn, as runs, written from the
 * generator's plan. A text file:
 *
 *   dumpsieve-truth 1
 *   scenario xen-hvm-balloon
 *   ...header lines (key value)...
 *   runs N
 *   START COUNT CLASS BACKING IMAGE MEMMAP CONTENT [owner=…] [fault=…] [kpf=…] [variant=…]
 *   ...N run lines, contiguous from pfn 0...
 *   end
 *
 * The reader streams the runs and checks every line (sorted, contiguous,
 * bounded, known words) and reports InputError with the file and line.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { InputError, ioError } from '../core/errors.js';
import { formatRange } from '../core/rangeset.js';
import type { PositionalSink } from '../io/sink.js';
import { MEMMAP_STATES, PAGE_CLASSES, type Content, type KpfOverride, type MemmapState, type PageClass, type PlanRun, type Variant } from './plan.js';
import type { PrintkCrash, PrintkTruth, PrintkTruthRecord } from './printk.js';

export const TRUTH_MAGIC = 'dumpsieve-truth';
export const TRUTH_VERSION = 1;
const MAX_PFN = 2 ** 40;
const MAX_LINE = 4096;

export interface TruthHeader {
  scenario: string;
  kernel: string;
  osrelease: string;
  seed: number;
  size: number;
  memoryModel: 'sparsemem' | 'flatmem';
  physBase: number;
  pageSize: number;
  faults: string[];
  /** One past the last pfn described (also the kpageflags table's entry count). */
  maxPfn: number;
  /** The guest kernel's max_pfn. */
  kernelMaxPfn: number;
  /** PT_LOAD segments of physical memory in the image, as pfn ranges. */
  loads: Array<{ start: number; end: number }>;
  /** The kexec-style kernel-text PT_LOAD (a second copy of those pfns), if the image has one. */
  textLoad?: { start: number; end: number } | undefined;
  /** The kernel log the image holds (optional: manifests before it have none). */
  printk?: PrintkTruth | undefined;
  runs: number;
}

/** One run of the manifest: exactly a plan run, read back. */
export type TruthRun = PlanRun;

const CONTENTS: readonly Content[] = ['zero', 'data', 'meta', 'none'];
const KPFS: readonly KpfOverride[] = ['clear-offline', 'clear-buddy'];
const VARIANTS: readonly Variant[] = ['adversarial', 'reported', 'zero-page'];
const hx = (n: number | bigint): string => `0x${n.toString(16)}`;

export function formatTruthHeader(h: Omit<TruthHeader, 'runs'>, runs: number): string {
  return `${formatTruthHeaderLines(h, runs).join('\n')}\n`;
}

function formatTruthHeaderLines(h: Omit<TruthHeader, 'runs'>, runs: number): string[] {
  const L = [`${TRUTH_MAGIC} ${TRUTH_VERSION}`];
  L.push('# The true state of every pfn of a synthetic guest, as runs (docs/formats/truth.md).');
  L.push(`scenario ${h.scenario}`);
  L.push(`kernel ${h.kernel}`);
  L.push(`osrelease ${h.osrelease}`);
  L.push(`seed ${h.seed}`);
  L.push(`size ${h.size}`);
  L.push(`memory-model ${h.memoryModel}`);
  L.push(`phys-base ${hx(h.physBase)}`);
  L.push(`page-size ${h.pageSize}`);
  L.push(`faults ${h.faults.length ? h.faults.join(',') : '-'}`);
  L.push(`max-pfn ${hx(h.maxPfn)}`);
  L.push(`kernel-max-pfn ${hx(h.kernelMaxPfn)}`);
  for (const l of h.loads) L.push(`pt-load ${hx(l.start)} ${hx(l.end)}`);
  if (h.textLoad) L.push(`text-load ${hx(h.textLoad.start)} ${hx(h.textLoad.end)}`);
  if (h.printk) L.push(...formatPrintk(h.printk));
  L.push(`runs ${runs}`);
  L.push('# START COUNT CLASS BACKING(ram|noram) IMAGE(load|noload) MEMMAP CONTENT(zero|data|meta|none) [owner= fault= kpf= variant=]');
  return L;
}

/** The kernel log lines of the header (docs/formats/truth.md, "Kernel log"). */
function formatPrintk(p: PrintkTruth): string[] {
  const L: string[] = [];
  L.push(`printk ${p.format} ${p.placement} written=${p.written} lost=${p.lost} in-flight=${p.inFlight} buffer-bytes=${p.bufferBytes}`);
  for (const r of p.ranges) L.push(`printk-range ${hx(r.start)} ${hx(r.end)}`);
  const c = p.crash;
  L.push(`crash ${JSON.stringify({ cpu: c.cpu, pid: c.pid, comm: c.comm, rip: hx(c.rip), rsp: hx(c.rsp), cr2: c.cr2 === undefined ? null : hx(c.cr2), panic: c.panic, cause: c.cause })}`);
  L.push('# log [SEQ, TS_NSEC, LEVEL, FACILITY, FLAGS, CALLER_ID|null, STATE|null, WRAPS(0|1), TEXT, [[KEY, VALUE]...]]');
  for (const r of p.records) {
    L.push(`log ${JSON.stringify([r.seq, r.tsNsec, r.level, r.facility, r.flags, r.caller ?? null, r.state ?? null, r.wraps ? 1 : 0, r.text, r.dict])}`);
  }
  return L;
}

const TOKEN = /^[^\s=]+$/;

export function formatTruthRun(r: TruthRun): string {
  for (const v of [r.owner, r.fault]) if (v !== undefined && !TOKEN.test(v)) throw new Error(`truth attribute value '${v}' has a space or '='`);
  let s = `${hx(r.start)} ${hx(r.count)} ${r.cls} ${r.ram ? 'ram' : 'noram'} ${r.load ? 'load' : 'noload'} ${r.memmap} ${r.content}`;
  if (r.owner !== undefined) s += ` owner=${r.owner}`;
  if (r.fault !== undefined) s += ` fault=${r.fault}`;
  if (r.kpf !== undefined) s += ` kpf=${r.kpf}`;
  if (r.variant !== undefined) s += ` variant=${r.variant}`;
  return s;
}

/** Write a truth manifest to a sink, through one reused 256 KiB buffer. */
export async function writeTruth(sink: PositionalSink, header: Omit<TruthHeader, 'runs'>, runs: readonly TruthRun[]): Promise<number> {
  const buf = Buffer.alloc(256 * 1024);
  let fill = 0;
  let pos = 0;
  const flush = async (): Promise<void> => {
    if (fill === 0) return;
    await sink.write(buf.subarray(0, fill), pos);
    pos += fill;
    fill = 0;
  };
  const put = async (text: string): Promise<void> => {
    if (fill + text.length > buf.length) await flush();
    fill += buf.write(text, fill, 'latin1');
  };
  for (const line of formatTruthHeaderLines(header, runs.length)) await put(`${line}\n`);
  for (const r of runs) {
    const line = `${formatTruthRun(r)}\n`;
    if (fill + line.length > buf.length) await flush();
    fill += buf.write(line, fill, 'latin1');
  }
  await put('end\n');
  await flush();
  await sink.setLength(pos);
  return pos;
}

// ---------------------------------------------------------------------------
// Reader

export interface TruthReader {
  readonly header: TruthHeader;
  /** The runs, in order, each checked; call once. */
  runs(): AsyncGenerator<TruthRun>;
  close(): void;
}

function parseNum(s: string | undefined, what: string, file: string, line: number, max = MAX_PFN): number {
  if (s === undefined) throw new InputError(`missing ${what}`, { file, line });
  let v: number;
  if (/^0x[0-9a-f]{1,14}$/.test(s)) v = Number.parseInt(s.slice(2), 16);
  else if (/^\d{1,16}$/.test(s)) v = Number(s);
  else throw new InputError(`${what} '${s.slice(0, 40)}' is not a number`, { file, line });
  if (!Number.isSafeInteger(v) || v > max) throw new InputError(`${what} ${s} is above the limit`, { file, line });
  return v;
}

/** Open a truth manifest: the header is read and checked at once, the runs stream. */
export async function openTruth(file: string): Promise<TruthReader> {
  const lines = await TruthLines.open(file);
  try {
    const header = await readHeader(lines);
    return { header, runs: () => readRuns(lines, header), close: () => lines.close() };
  } catch (err) {
    lines.close();
    throw err;
  }
}

/** The lines of a manifest that say something (blank lines and comments skipped), each checked for length. */
class TruthLines {
  /** Number of the line last read (1-based). */
  lineNo = 0;

  private constructor(
    readonly file: string,
    private readonly stream: ReadStream,
    private readonly rl: Interface,
    private readonly it: AsyncIterator<string>,
  ) {}

  static async open(file: string): Promise<TruthLines> {
    const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 256 * 1024 });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (err) => reject(ioError(err, file, 'cannot read truth manifest')));
    });
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    return new TruthLines(file, stream, rl, rl[Symbol.asyncIterator]());
  }

  /** The next line, trimmed, or undefined at the end of the file. */
  async next(): Promise<string | undefined> {
    for (;;) {
      let r: IteratorResult<string>;
      try {
        r = await this.it.next();
      } catch (err) {
        throw ioError(err, this.file, 'cannot read truth manifest');
      }
      if (r.done) return undefined;
      this.lineNo++;
      const t = r.value;
      if (t.length > MAX_LINE) throw this.error(`line is longer than ${MAX_LINE} characters`);
      if (t.trim() === '' || t.startsWith('#')) continue;
      return t.trim();
    }
  }

  /** An InputError at the line last read (or at `line`). */
  error(message: string, line = this.lineNo): InputError {
    return new InputError(message, { file: this.file, line });
  }

  close(): void {
    this.rl.close();
    this.stream.destroy();
  }
}

/** The magic line and the header, up to and including 'runs N'. */
async function readHeader(lines: TruthLines): Promise<TruthHeader> {
  const first = await lines.next();
  if (first !== `${TRUTH_MAGIC} ${TRUTH_VERSION}`) {
    if (first?.startsWith(`${TRUTH_MAGIC} `)) throw lines.error(`truth manifest version '${first.slice(TRUTH_MAGIC.length + 1)}' is not supported (this build reads ${TRUTH_VERSION})`);
    throw lines.error(`not a truth manifest (first line must be '${TRUTH_MAGIC} ${TRUTH_VERSION}')`, lines.lineNo || 1);
  }
  const file = lines.file;
  const seen = new Map<string, string>();
  const loads: Array<{ start: number; end: number }> = [];
  let textLoad: { start: number; end: number } | undefined;
  const pk: PrintkDraft = { ranges: [], records: [] };
  let runs: number | undefined;
  while (runs === undefined) {
    const t = await lines.next();
    if (t === undefined) throw lines.error("truth manifest ends before its 'runs N' line");
    const sp = t.indexOf(' ');
    const key = sp < 0 ? t : t.slice(0, sp);
    const val = sp < 0 ? '' : t.slice(sp + 1).trim();
    const line = lines.lineNo;
    if (key === 'pt-load') {
      const l = parseSpan(val, 'pt-load', "expected 'pt-load START END'", file, line);
      const prev = loads[loads.length - 1];
      if (l.end <= l.start || (prev && l.start < prev.end)) throw lines.error(`pt-load ${l.text} is empty, or overlaps or precedes the previous one`);
      loads.push({ start: l.start, end: l.end });
    } else if (key === 'text-load') {
      if (textLoad) throw lines.error("expected one 'text-load START END'");
      const l = parseSpan(val, 'text-load', "expected one 'text-load START END'", file, line);
      if (l.end <= l.start) throw lines.error(`text-load ${l.text} is empty`);
      textLoad = { start: l.start, end: l.end };
    } else if (PRINTK_KEYS.includes(key)) {
      parsePrintkLine(key, val, pk, file, line);
    } else if (key === 'runs') {
      runs = parseNum(val, 'run count', file, line, 2 ** 32);
    } else {
      if (!HEADER_KEYS.includes(key)) throw lines.error(`unknown header key '${key.slice(0, 40)}'`);
      if (seen.has(key)) throw lines.error(`header key '${key}' given twice`);
      if (val === '') throw lines.error(`header key '${key}' has no value`);
      seen.set(key, val);
    }
  }
  for (const k of HEADER_KEYS) if (!seen.has(k)) throw lines.error(`header lacks '${k}'`);
  return headerOf(seen, loads, textLoad, pk, runs, file, lines.lineNo);
}

/** The header from its lines, each value checked (errors name the 'runs' line, `hl`). */
function headerOf(
  seen: Map<string, string>,
  loads: TruthHeader['loads'],
  textLoad: TruthHeader['textLoad'],
  pk: PrintkDraft,
  runs: number,
  file: string,
  hl: number,
): TruthHeader {
  const model = seen.get('memory-model')!;
  if (model !== 'sparsemem' && model !== 'flatmem') throw new InputError(`memory-model '${model}' is not sparsemem or flatmem`, { file, line: hl });
  const pageSize = parseNum(seen.get('page-size'), 'page-size', file, hl);
  if (pageSize !== 4096) throw new InputError(`page-size ${pageSize} is not 4096`, { file, line: hl });
  const faultsText = seen.get('faults')!;
  const header: TruthHeader = {
    scenario: seen.get('scenario')!,
    kernel: seen.get('kernel')!,
    osrelease: seen.get('osrelease')!,
    seed: parseNum(seen.get('seed'), 'seed', file, hl, 0xffff_ffff),
    size: parseNum(seen.get('size'), 'size', file, hl, 2 ** 52),
    memoryModel: model,
    physBase: parseNum(seen.get('phys-base'), 'phys-base', file, hl, 2 ** 52),
    pageSize,
    faults: faultsText === '-' ? [] : faultsText.split(','),
    maxPfn: parseNum(seen.get('max-pfn'), 'max-pfn', file, hl),
    kernelMaxPfn: parseNum(seen.get('kernel-max-pfn'), 'kernel-max-pfn', file, hl),
    loads,
    textLoad,
    printk: finishPrintk(pk, file, hl),
    runs,
  };
  for (const l of loads) if (l.end > header.maxPfn) throw new InputError(`pt-load ending at ${hx(l.end)} is beyond max-pfn ${hx(header.maxPfn)}`, { file, line: hl });
  return header;
}

/** The runs after the header: sorted, contiguous from pfn 0, as many as announced, up to max-pfn, then 'end'. Closes the file. */
async function* readRuns(lines: TruthLines, header: TruthHeader): AsyncGenerator<TruthRun> {
  let at = 0;
  let n = 0;
  try {
    for (;;) {
      const t = await lines.next();
      if (t === undefined) throw lines.error(`truth manifest is truncated: ${n} of ${header.runs} runs and no 'end' line`);
      if (t === 'end') {
        if (n !== header.runs) throw lines.error(`'end' after ${n} runs, header says ${header.runs}`);
        if (at !== header.maxPfn) throw lines.error(`runs cover pfns up to ${hx(at)}, not max-pfn ${hx(header.maxPfn)}`);
        if ((await lines.next()) !== undefined) throw lines.error("text after the 'end' line");
        return;
      }
      if (n === header.runs) throw lines.error(`more runs than the ${header.runs} the header announces`);
      const r = parseRun(t, lines.file, lines.lineNo);
      if (r.start !== at) {
        throw lines.error(r.start < at ? `run at ${hx(r.start)} overlaps or precedes the previous run (ends at ${hx(at)})` : `gap: pfns ${formatRange(at, r.start)} are not described`);
      }
      if (r.start + r.count > header.maxPfn) throw lines.error(`run ${hx(r.start)}+${hx(r.count)} goes past max-pfn ${hx(header.maxPfn)}`);
      at = r.start + r.count;
      n++;
      yield r;
    }
  } finally {
    lines.close();
  }
}

/** A 'KEY START END' value: two pfns (as read and as written), or InputError `expected` when there are more words. */
function parseSpan(val: string, key: string, expected: string, file: string, line: number): { start: number; end: number; text: string } {
  const [a, b, extra] = val.split(/\s+/);
  if (extra !== undefined) throw new InputError(expected, { file, line });
  return { start: parseNum(a, `${key} start`, file, line), end: parseNum(b, `${key} end`, file, line), text: `${a} ${b}` };
}

const PRINTK_KEYS = ['printk', 'printk-range', 'crash', 'log'];

interface PrintkDraft {
  head?: Pick<PrintkTruth, 'format' | 'placement' | 'written' | 'lost' | 'inFlight' | 'bufferBytes'>;
  crash?: PrintkCrash;
  ranges: Array<{ start: number; end: number }>;
  records: PrintkTruthRecord[];
}

function parseJson(val: string, what: string, file: string, line: number): unknown {
  try {
    return JSON.parse(val);
  } catch {
    throw new InputError(`${what} is not valid JSON`, { file, line });
  }
}

function parsePrintkLine(key: string, val: string, pk: PrintkDraft, file: string, line: number): void {
  const bad = (what: string): never => {
    throw new InputError(what, { file, line });
  };
  if (key === 'printk') {
    if (pk.head) bad("header key 'printk' given twice");
    const [format, placement, ...kv] = val.split(/\s+/);
    if (format !== 'lockless' && format !== 'log_buf') bad(`printk format '${(format ?? '').slice(0, 40)}' is not lockless or log_buf`);
    if (placement !== 'static' && placement !== 'dynamic') bad(`printk placement '${(placement ?? '').slice(0, 40)}' is not static or dynamic`);
    const f = new Map(kv.map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]));
    const num = (k: string): number => parseNum(f.get(k), `printk ${k}`, file, line, 2 ** 40);
    pk.head = { format: format as PrintkTruth['format'], placement: placement as PrintkTruth['placement'], written: num('written'), lost: num('lost'), inFlight: num('in-flight'), bufferBytes: num('buffer-bytes') };
  } else if (key === 'printk-range') {
    const { start, end } = parseSpan(val, 'printk-range', "expected 'printk-range START END'", file, line);
    if (end <= start) bad('printk-range is empty');
    pk.ranges.push({ start, end });
  } else if (key === 'crash') {
    if (pk.crash) bad("header key 'crash' given twice");
    const o = parseJson(val, 'crash', file, line) as Record<string, unknown>;
    const big = (v: unknown, k: string): bigint => (typeof v === 'string' && /^0x[0-9a-f]{1,16}$/.test(v) ? BigInt(v) : bad(`crash ${k} is not a 0x-hex number`));
    if (typeof o !== 'object' || o === null || typeof o.cpu !== 'number' || typeof o.pid !== 'number' || typeof o.comm !== 'string' || typeof o.panic !== 'string' || typeof o.cause !== 'string') bad('crash lacks cpu, pid, comm, panic or cause');
    pk.crash = { cpu: o.cpu as number, pid: o.pid as number, comm: o.comm as string, rip: big(o.rip, 'rip'), rsp: big(o.rsp, 'rsp'), cr2: o.cr2 === null ? undefined : big(o.cr2, 'cr2'), panic: o.panic as string, cause: o.cause as string };
  } else {
    const a = parseJson(val, 'log record', file, line);
    if (!Array.isArray(a) || a.length !== 10) bad('log record is not a 10-element array');
    const [seq, ts, level, facility, flags, caller, state, wraps, text, dict] = a as unknown[];
    const int = (v: unknown, k: string): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : bad(`log ${k} is not a non-negative integer`));
    if (typeof text !== 'string') bad('log text is not a string');
    if (!Array.isArray(dict) || !dict.every((kv) => Array.isArray(kv) && kv.length === 2 && typeof kv[0] === 'string' && typeof kv[1] === 'string')) bad('log dictionary is not a list of [key, value]');
    if (state !== null && state !== 'finalized' && state !== 'committed') bad('log state is not finalized, committed or null');
    pk.records.push({
      seq: int(seq, 'seq'),
      tsNsec: int(ts, 'timestamp'),
      level: int(level, 'level'),
      facility: int(facility, 'facility'),
      flags: int(flags, 'flags'),
      caller: caller === null ? undefined : int(caller, 'caller'),
      state: (state ?? undefined) as PrintkTruthRecord['state'],
      wraps: int(wraps, 'wraps') === 1,
      text: text as string,
      dict: dict as Array<[string, string]>,
    });
  }
}

function finishPrintk(pk: PrintkDraft, file: string, line: number): PrintkTruth | undefined {
  if (!pk.head) {
    if (pk.crash || pk.ranges.length || pk.records.length) throw new InputError("'crash', 'printk-range' or 'log' lines without a 'printk' line", { file, line });
    return undefined;
  }
  if (!pk.crash) throw new InputError("'printk' without a 'crash' line", { file, line });
  return { ...pk.head, ranges: pk.ranges, records: pk.records, crash: pk.crash };
}

const HEADER_KEYS = ['scenario', 'kernel', 'osrelease', 'seed', 'size', 'memory-model', 'phys-base', 'page-size', 'faults', 'max-pfn', 'kernel-max-pfn'];

function parseRun(t: string, file: string, line: number): TruthRun {
  const f = t.split(' ');
  if (f.length < 7) throw new InputError(`run line has ${f.length} fields, expected at least 7 (START COUNT CLASS BACKING IMAGE MEMMAP CONTENT)`, { file, line });
  const start = parseNum(f[0], 'start', file, line);
  const count = parseNum(f[1], 'count', file, line);
  if (count === 0) throw new InputError('run has count 0', { file, line });
  const cls = f[2] as PageClass;
  if (!PAGE_CLASSES.includes(cls)) throw new InputError(`unknown class '${f[2]!.slice(0, 40)}'`, { file, line });
  if (f[3] !== 'ram' && f[3] !== 'noram') throw new InputError(`backing '${f[3]!.slice(0, 40)}' is not ram or noram`, { file, line });
  if (f[4] !== 'load' && f[4] !== 'noload') throw new InputError(`image '${f[4]!.slice(0, 40)}' is not load or noload`, { file, line });
  const memmap = f[5] as MemmapState;
  if (!MEMMAP_STATES.includes(memmap)) throw new InputError(`unknown memmap state '${f[5]!.slice(0, 40)}'`, { file, line });
  const content = f[6] as Content;
  if (!CONTENTS.includes(content)) throw new InputError(`unknown content '${f[6]!.slice(0, 40)}'`, { file, line });
  const load = f[4] === 'load';
  if ((content === 'none') === load) throw new InputError(`content '${content}' contradicts image '${f[4]}'`, { file, line });
  const r: TruthRun = { start, count, cls, ram: f[3] === 'ram', load, memmap, content };
  for (let i = 7; i < f.length; i++) {
    const eq = f[i]!.indexOf('=');
    const k = eq < 0 ? f[i]! : f[i]!.slice(0, eq);
    const v = eq < 0 ? '' : f[i]!.slice(eq + 1);
    if (v === '') throw new InputError(`attribute '${k.slice(0, 40)}' has no value`, { file, line });
    switch (k) {
      case 'owner':
        if (r.owner !== undefined) throw new InputError('owner given twice', { file, line });
        r.owner = v;
        break;
      case 'fault':
        if (r.fault !== undefined) throw new InputError('fault given twice', { file, line });
        r.fault = v;
        break;
      case 'kpf':
        if (!KPFS.includes(v as KpfOverride)) throw new InputError(`kpf '${v.slice(0, 40)}' is not one of ${KPFS.join(', ')}`, { file, line });
        r.kpf = v as KpfOverride;
        break;
      case 'variant':
        if (!VARIANTS.includes(v as Variant)) throw new InputError(`variant '${v.slice(0, 40)}' is not one of ${VARIANTS.join(', ')}`, { file, line });
        r.variant = v as Variant;
        break;
      default:
        throw new InputError(`unknown attribute '${k.slice(0, 40)}'`, { file, line });
    }
  }
  return r;
}

/** Read a whole truth manifest (for small guests and tests). */
export async function readTruth(file: string): Promise<{ header: TruthHeader; runs: TruthRun[] }> {
  const t = await openTruth(file);
  const runs: TruthRun[] = [];
  for await (const r of t.runs()) runs.push(r);
  return { header: t.header, runs };
}
