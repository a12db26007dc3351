/**
 * Expectations for the kernel log, written from the synth truth manifest
 * and from makedumpfile's documented output format, never from the code
 * under test; and a way to find and damage the log's bytes in an image.
 */
import { open } from 'node:fs/promises';
import type { PrintkTruthRecord } from '../../src/synth/printk.js';
import { parseVmcoreinfo, PhysImage, readPhdrs, translate, vmcoreinfoText } from '../synth/helpers.js';

/**
 * makedumpfile --dump-dmesg's line for a record (printk.c dump_record()):
 * "[%5lld.%06ld] ", newline → newline plus the prefix's width of spaces,
 * isprint()||isspace() as is, anything else "\x%02x".
 */
export function mdfLine(r: Pick<PrintkTruthRecord, 'tsNsec' | 'text'>): string {
  const sec = Math.floor(r.tsNsec / 1e9);
  const usec = Math.floor((r.tsNsec % 1e9) / 1000);
  const prefix = `[${sec.toString().padStart(5, ' ')}.${usec.toString().padStart(6, '0')}] `;
  let s = prefix;
  for (const ch of r.text) {
    const c = ch.charCodeAt(0);
    if (c === 10) s += `\n${' '.repeat(prefix.length)}`;
    else if ((c >= 32 && c < 127) || (c >= 9 && c <= 13)) s += ch;
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `${s}\n`;
}

export function mdfText(records: readonly PrintkTruthRecord[]): string {
  return records.map(mdfLine).join('');
}

const START_KERNEL_MAP = 0xffffffff80000000n;

/** Physical addresses and file offsets of an ELF image's kernel log, found with the test's own page walk. */
export class LogBytes {
  private constructor(
    readonly path: string,
    readonly img: PhysImage,
    readonly vi: Map<string, string>,
    private readonly pgd: number,
  ) {}

  static async open(path: string): Promise<LogBytes> {
    const { notes } = await readPhdrs(path);
    const vi = parseVmcoreinfo(vmcoreinfoText(notes));
    const img = await PhysImage.open(path);
    const physBase = Number(vi.get('NUMBER(phys_base)') ?? '0');
    const pgd = Number(BigInt(`0x${vi.get('SYMBOL(init_top_pgt)')!}`) - START_KERNEL_MAP) + physBase;
    return new LogBytes(path, img, vi, pgd);
  }

  sym(name: string): bigint {
    return BigInt(`0x${this.vi.get(`SYMBOL(${name})`)!}`);
  }

  num(key: string): number {
    return Number(this.vi.get(key)!);
  }

  phys(va: bigint): Promise<number> {
    return translate(this.img, this.pgd, va);
  }

  async u64(va: bigint): Promise<bigint> {
    return this.img.u64(await this.phys(va));
  }

  /** Overwrite bytes at a kernel virtual address (within one page) in the image file. */
  async patch(va: bigint, bytes: Uint8Array): Promise<void> {
    const pa = await this.phys(va);
    const l = this.img.loads.find((x) => pa >= x.paddr && pa + bytes.length <= x.paddr + x.filesz)!;
    const fh = await open(this.path, 'r+');
    try {
      await fh.write(bytes, 0, bytes.length, l.offset + (pa - l.paddr));
    } finally {
      await fh.close();
    }
  }

  close(): Promise<void> {
    return this.img.close();
  }
}

export function u64le(v: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}

export function u16le(v: number): Uint8Array {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

export function u32le(v: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}
