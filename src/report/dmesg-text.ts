/**
 * The kernel log for people and programs.
 *
 * Text follows makedumpfile --dump-dmesg (and the kernel's console with
 * printk.time=1): `[%5lu.%06lu] text`, a record's inner newlines continue
 * under the text with the prefix's width of spaces, bytes that are neither
 * printable ASCII nor whitespace become `\xNN`. `--caller` inserts the
 * kernel's `[%6s]` caller field (T<pid> or C<cpu>) after the time, as a
 * CONFIG_PRINTK_CALLER console prints it; `--dict` adds the dictionary or
 * dev_printk_info lines (` KEY=value`) as /dev/kmsg does.
 */
import { CALLER_CPU_BIT, LOG_CONT, type KernelLogRecord } from '../kernel/printk.js';
import type { KernelLogReport } from '../pipeline/dmesg.js';

export interface DmesgTextOptions {
  caller?: boolean | undefined;
  dict?: boolean | undefined;
  /**
   * 'makedumpfile' (default): a record's further lines are indented under
   * its text. 'console': every line gets the prefix, as the kernel's console
   * prints a record (record_print_text(); msg_print_text() before 5.10).
   */
  style?: 'makedumpfile' | 'console' | undefined;
}

/** `[    1.234567] ` for a record's timestamp. */
export function timePrefix(r: Pick<KernelLogRecord, 'sec' | 'nsec'>): string {
  return `[${String(r.sec).padStart(5, ' ')}.${String(Math.floor(r.nsec / 1000)).padStart(6, '0')}] `;
}

/** T<pid> or C<cpu>. */
export function callerName(id: number): string {
  return (id & CALLER_CPU_BIT) !== 0 ? `C${(id & ~CALLER_CPU_BIT) >>> 0}` : `T${id >>> 0}`;
}

/** isprint() || isspace() in the C locale: shown as is; anything else as \xNN. */
function shown(c: number): boolean {
  return (c >= 0x20 && c < 0x7f) || (c >= 0x09 && c <= 0x0d);
}

/** The text of a record with the escapes applied; inner newlines kept. */
export function escapeText(text: Uint8Array): string {
  let s = '';
  for (const c of text) s += c === 0x0a || shown(c) ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

/** One record as it prints: one line, plus continuation lines for inner newlines. */
export function formatRecord(r: KernelLogRecord, o: DmesgTextOptions = {}): string {
  let prefix = timePrefix(r);
  if (o.caller && r.callerId !== undefined) prefix = `${prefix.slice(0, -1)}[${callerName(r.callerId).padStart(6, ' ')}] `;
  const cont = o.style === 'console' ? prefix : ' '.repeat(prefix.length);
  let out = prefix + escapeText(r.text).split('\n').join(`\n${cont}`);
  if (o.dict) for (const [k, v] of r.dict) out += `\n ${k}=${v}`;
  return `${out}\n`;
}

export function renderDmesg(log: KernelLogReport, o: DmesgTextOptions & { tail?: number | undefined } = {}): string {
  const recs = o.tail !== undefined ? log.records.slice(Math.max(0, log.records.length - o.tail)) : log.records;
  let s = '';
  for (const r of recs) s += formatRecord(r, o);
  return s;
}

/** A one-line summary for standard error: which layout was found and what is missing. */
export function describeLog(log: KernelLogReport): string {
  const what = log.format === 'lockless' ? 'lockless ring buffer (prb, Linux 5.10+)' : 'log_buf (variable-length records, Linux 3.5-5.9)';
  const parts = [`${log.records.length} records from the ${what}`];
  if (log.lost !== undefined && log.lost > 0) parts.push(`${log.lost} older records overwritten`);
  if (log.inFlight > 0) parts.push(`${log.inFlight} being written at the crash`);
  return parts.join(', ');
}

/** JSON for programs: one object per record, with level, facility, sequence and time. */
export function dmesgJson(log: KernelLogReport, o: { tail?: number | undefined } = {}): object {
  const recs = o.tail !== undefined ? log.records.slice(Math.max(0, log.records.length - o.tail)) : log.records;
  return {
    file: log.file,
    osrelease: log.osrelease ?? null,
    format: log.format,
    lost: log.lost ?? null,
    inFlight: log.inFlight,
    warnings: log.warnings,
    records: recs.map((r) => ({
      sequence: r.seq ?? null,
      timestamp: { sec: r.sec, nsec: r.nsec },
      level: r.level,
      facility: r.facility,
      continuation: (r.flags & LOG_CONT) !== 0,
      caller: r.callerId === undefined ? null : callerName(r.callerId),
      state: r.state ?? null,
      text: Buffer.from(r.text).toString('latin1'),
      dict: Object.fromEntries(r.dict),
    })),
  };
}
