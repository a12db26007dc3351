/**
 * Format registry: look at the first bytes, pick the reader. Probes answer
 * "not mine" without failing; opening is the reader's job and its errors
 * are the ones the user sees.
 *
 *   "makedumpfile\0"   flattened (-F): mapped in place, then probed again inside
 *   "\x7fELF"          ELF core (/proc/vmcore, makedumpfile -E)
 *   "KDUMP   "         kdump-compressed (makedumpfile default output)
 *   "DISKDUMP"         kdump-compressed, old diskdump signature
 */
import { DumpError } from '../core/errors.js';
import { FileSource, type ByteSource } from '../io/source.js';
import { ElfDumpReader, probeElf } from './elf/reader.js';
import { FlatSource, probeFlat } from './flat/reader.js';
import { probeKdump } from './kdump/header.js';
import { KdumpReader, type KdumpReaderOptions } from './kdump/reader.js';
import type { DumpReader } from './types.js';

export type DumpKind = 'flattened' | 'elf' | 'kdump';

/** Bytes every probe needs at most. */
export const PROBE_BYTES = 32;

export interface OpenDumpOptions {
  /** Name used in messages (default: the path). */
  name?: string;
  kdump?: KdumpReaderOptions;
}

/** Which format the first bytes announce, or undefined. Never throws. */
export function probeDump(head: Uint8Array): DumpKind | undefined {
  try {
    if (probeFlat(head)) return 'flattened';
    if (probeElf(head)) return 'elf';
    if (probeKdump(head)) return 'kdump';
  } catch {
    // A probe must never fail; treat it as "not mine".
  }
  return undefined;
}

/** Open a dump file of any supported format. The file is closed again if opening fails. */
export async function openDump(path: string, opts: OpenDumpOptions = {}): Promise<DumpReader> {
  const src = await FileSource.open(path, opts.name ?? path);
  try {
    return await openDumpSource(src, opts);
  } catch (err) {
    await src.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Open a dump from any ByteSource. On failure the source is left open (the
 * caller owns it); on success the reader owns it and closes it.
 */
export async function openDumpSource(src: ByteSource, opts: OpenDumpOptions = {}): Promise<DumpReader> {
  const head = await readHead(src);
  const kind = probeDump(head);
  if (kind === 'flattened') {
    const flat = await FlatSource.open(src);
    const inner = await readHead(flat);
    const innerKind = probeDump(inner);
    if (innerKind !== 'elf' && innerKind !== 'kdump') {
      throw new DumpError('DUMP_UNSUPPORTED', `flattened file holding no ELF or kdump dump: rebuilt file ${describeHead(inner)}`, {
        file: src.name,
        offset: 0,
      });
    }
    const reader = await openKind(innerKind, flat, opts);
    const info = reader.info;
    info.format = `flattened-${info.format}`;
    info.fileSize = src.size;
    info.details = {
      ...info.details,
      'flattened records': flat.records,
      'flattened runs': flat.runCount,
      'rebuilt size': flat.size,
    };
    return reader;
  }
  if (kind === undefined) {
    throw new DumpError('DUMP_UNSUPPORTED', `not a dump dumpsieve reads (ELF core, kdump-compressed, flattened): ${describeHead(head)}`, {
      file: src.name,
      offset: 0,
    });
  }
  return openKind(kind, src, opts);
}

function openKind(kind: 'elf' | 'kdump', src: ByteSource, opts: OpenDumpOptions): Promise<DumpReader> {
  return kind === 'elf' ? ElfDumpReader.open(src) : KdumpReader.open(src, opts.kdump);
}

async function readHead(src: ByteSource): Promise<Uint8Array> {
  const head = new Uint8Array(Math.min(PROBE_BYTES, src.size));
  let done = 0;
  while (done < head.length) {
    const n = await src.read(head, done, head.length - done, done);
    if (n <= 0) break;
    done += n;
  }
  return head.subarray(0, done);
}

/** "the first bytes are 50 4b 03 04 … ("PK..")", or that the file is empty. */
function describeHead(head: Uint8Array): string {
  if (head.length === 0) return 'the file is empty';
  const shown = head.subarray(0, 16);
  const hexes = Array.from(shown, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = Array.from(shown, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  const gzip = head[0] === 0x1f && head[1] === 0x8b ? ' (gzip data: inflate it first)' : '';
  return `the first bytes are ${hexes} ("${text}")${gzip}`;
}
