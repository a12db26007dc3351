/**
 * readKernelLog(): the kernel log of a dump, from VMCOREINFO alone (no
 * vmlinux), for `dumpsieve dmesg`, the crash summary of `info`, and any
 * caller that wants records (the real-guest suite compares them with the
 * guest's serial console).
 *
 *   const log = await readKernelLog('vmcore');
 *   for (const r of log.records) console.log(r.sec, r.nsec, textOf(r));
 */
import { DumpError } from '../core/errors.js';
import type { DumpReader } from '../formats/types.js';
import { kernelLogPfnRanges, readKernelLogFrom, type KernelLog } from '../kernel/printk.js';
import { X86_64Translator } from '../kernel/x86_64.js';
import { openInput } from './input.js';

export type { KernelLog, KernelLogRecord, KernelLogFormat } from '../kernel/printk.js';

export interface KernelLogReport extends KernelLog {
  file: string;
  /** OSRELEASE of the dump's VMCOREINFO. */
  osrelease: string | undefined;
}

function translatorOf(reader: DumpReader): X86_64Translator {
  const vi = reader.info.vmcoreinfo;
  if (!vi) throw new DumpError('VMCOREINFO_MISSING', 'the dump has no VMCOREINFO note: the kernel log cannot be found', { file: reader.info.file });
  return X86_64Translator.fromVmcoreinfo(vi, reader);
}

/** The kernel log of an open dump (the reader stays open). */
export async function readKernelLogOf(reader: DumpReader): Promise<KernelLogReport> {
  const tr = translatorOf(reader);
  const vi = reader.info.vmcoreinfo!;
  const log = await readKernelLogFrom(reader, vi, tr);
  return { file: reader.info.file, osrelease: vi.osrelease, ...log };
}

/** The kernel log of a dump file (any format dumpsieve reads, .gz and .br included). */
export async function readKernelLog(input: string | DumpReader): Promise<KernelLogReport> {
  if (typeof input !== 'string') return readKernelLogOf(input);
  const reader = await openInput(input);
  try {
    return await readKernelLogOf(reader);
  } finally {
    await reader.close();
  }
}

/**
 * Pfn ranges of the kernel log's structures, for protection from exclusion
 * (the filter adds them to its protected ranges). Empty when the dump has
 * no log keys or the log cannot be located.
 */
export async function kernelLogPfns(reader: DumpReader, tr?: X86_64Translator): Promise<Array<{ start: number; end: number }>> {
  const vi = reader.info.vmcoreinfo;
  if (!vi) return [];
  try {
    return await kernelLogPfnRanges(reader, vi, tr ?? X86_64Translator.fromVmcoreinfo(vi, reader));
  } catch (err) {
    if (err instanceof DumpError) return [];
    throw err;
  }
}
