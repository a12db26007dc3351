/**
 * VMCOREINFO: the `KEY=VALUE` text the kernel leaves in its crash notes
 * (kernel/vmcore_info.c). Keys come in kinds:
 *
 *   SYMBOL(name)=hex address            (no 0x)
 *   OFFSET(struct.member)=decimal
 *   SIZE(struct)=decimal
 *   LENGTH(array)=decimal
 *   NUMBER(name)=signed decimal         (a few arch entries print 0x-hex)
 *   OSRELEASE=string  PAGESIZE=decimal  KERNELOFFSET=hex  CRASHTIME=decimal
 *
 * Lookups are typed; `require*` variants fail with a message that says what
 * the value was needed for. A later duplicate key wins, as in the kernel's
 * consumers (makedumpfile and libkdumpfile both take the last occurrence).
 */
import { DumpError } from '../core/errors.js';

export type VmcoreInfoKind = 'SYMBOL' | 'OFFSET' | 'SIZE' | 'LENGTH' | 'NUMBER';

export interface VmcoreInfoSource {
  file?: string | undefined;
  offset?: number | undefined;
}

/** Largest VMCOREINFO text accepted (real ones are 2–8 KiB). */
export const VMCOREINFO_MAX_BYTES = 1 << 20;

export class VmcoreInfo {
  readonly raw: string;
  private readonly map = new Map<string, string>();
  private readonly src: VmcoreInfoSource;
  /** Lines that are not KEY=VALUE (kept for `info`). */
  readonly malformedLines: number;

  private constructor(raw: string, src: VmcoreInfoSource) {
    this.raw = raw;
    this.src = src;
    let bad = 0;
    for (const line of raw.split('\n')) {
      if (line.length === 0) continue;
      const eq = line.indexOf('=');
      if (eq <= 0) {
        bad++;
        continue;
      }
      this.map.set(line.slice(0, eq), line.slice(eq + 1).trim());
    }
    this.malformedLines = bad;
  }

  /** Parse VMCOREINFO text. A trailing NUL padding is ignored. */
  static parse(text: string | Uint8Array, src: VmcoreInfoSource = {}): VmcoreInfo {
    const bytes = typeof text === 'string' ? undefined : text;
    if (bytes && bytes.length > VMCOREINFO_MAX_BYTES) {
      throw new DumpError('DUMP_LIMIT_EXCEEDED', `VMCOREINFO is ${bytes.length} bytes, above ${VMCOREINFO_MAX_BYTES}`, src);
    }
    let s = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('latin1');
    const nul = s.indexOf('\0');
    if (nul >= 0) s = s.slice(0, nul);
    return new VmcoreInfo(s, src);
  }

  /** Build from key/value pairs (synthetic images, tests). Order is kept. */
  static fromEntries(entries: Iterable<readonly [string, string | number | bigint]>): VmcoreInfo {
    let text = '';
    for (const [k, v] of entries) text += `${k}=${typeof v === 'bigint' ? v.toString(16) : String(v)}\n`;
    return new VmcoreInfo(text, {});
  }

  get size(): number {
    return this.map.size;
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  get(key: string): string | undefined {
    return this.map.get(key);
  }

  get osrelease(): string | undefined {
    return this.map.get('OSRELEASE');
  }

  get pageSize(): number | undefined {
    return this.decimal('PAGESIZE');
  }

  get kernelOffset(): bigint | undefined {
    return this.hexValue('KERNELOFFSET');
  }

  get crashTime(): number | undefined {
    return this.decimal('CRASHTIME');
  }

  symbol(name: string): bigint | undefined {
    return this.hexValue(`SYMBOL(${name})`);
  }

  offset(name: string): number | undefined {
    return this.decimal(`OFFSET(${name})`);
  }

  sizeOf(name: string): number | undefined {
    return this.decimal(`SIZE(${name})`);
  }

  length(name: string): number | undefined {
    return this.decimal(`LENGTH(${name})`);
  }

  /** NUMBER(name) as a number; signed decimal or 0x-hex. Fails if beyond 2^53. */
  number(name: string): number | undefined {
    const v = this.numberBig(name);
    if (v === undefined) return undefined;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw this.corrupt(`NUMBER(${name})`, 'is beyond 2^53');
    }
    return Number(v);
  }

  numberBig(name: string): bigint | undefined {
    const key = `NUMBER(${name})`;
    const s = this.map.get(key);
    if (s === undefined) return undefined;
    if (/^-?\d+$/.test(s)) return BigInt(s);
    if (/^0x[0-9a-fA-F]+$/.test(s)) return BigInt(s);
    throw this.corrupt(key, `is '${clip(s)}', not a number`);
  }

  requireSymbol(name: string, neededFor: string): bigint {
    const v = this.symbol(name);
    if (v === undefined) throw this.missing(`SYMBOL(${name})`, neededFor);
    return v;
  }

  requireOffset(name: string, neededFor: string): number {
    const v = this.offset(name);
    if (v === undefined) throw this.missing(`OFFSET(${name})`, neededFor);
    return v;
  }

  requireSize(name: string, neededFor: string): number {
    const v = this.sizeOf(name);
    if (v === undefined) throw this.missing(`SIZE(${name})`, neededFor);
    return v;
  }

  requireNumber(name: string, neededFor: string): number {
    const v = this.number(name);
    if (v === undefined) throw this.missing(`NUMBER(${name})`, neededFor);
    return v;
  }

  requirePageSize(): number {
    const v = this.pageSize;
    if (v === undefined) throw this.missing('PAGESIZE', 'the page size');
    return v;
  }

  missing(key: string, neededFor: string): DumpError {
    return new DumpError('VMCOREINFO_MISSING', `VMCOREINFO has no ${key}, needed for ${neededFor}`, this.src);
  }

  private decimal(key: string): number | undefined {
    const s = this.map.get(key);
    if (s === undefined) return undefined;
    if (!/^\d{1,15}$/.test(s)) throw this.corrupt(key, `is '${clip(s)}', not a decimal number`);
    return Number(s);
  }

  private hexValue(key: string): bigint | undefined {
    const s = this.map.get(key);
    if (s === undefined) return undefined;
    const t = s.startsWith('0x') || s.startsWith('0X') ? s.slice(2) : s;
    if (!/^[0-9a-fA-F]{1,16}$/.test(t)) throw this.corrupt(key, `is '${clip(s)}', not a hex address`);
    return BigInt(`0x${t}`);
  }

  private corrupt(key: string, what: string): DumpError {
    return new DumpError('DUMP_CORRUPT', `VMCOREINFO ${key} ${what}`, this.src);
  }
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
