/**
 * Opening the input of a command, as one DumpReader whatever it is:
 *
 * - a dump file (ELF, kdump-compressed, flattened), read in place;
 * - the parts of a split set (makedumpfile --split), read as one dump;
 * - `-` (standard input) or a FIFO: a stream (flattened, ELF or kdump,
 *   gzip-compressed or not), read once, in order, into a sparse spill file
 *   in the work directory (io/spill.ts) — a flattened stream is rebuilt
 *   there record by record as makedumpfile -R would;
 * - a gzip (by its magic) or brotli (`.br`) compressed copy, inflated into
 *   a spill file the same way.
 *
 * Spill files are removed when the reader closes, when opening fails, on
 * the CLI's abort and at exit. Character devices, directories, sockets:
 * one line, "not a regular file".
 */
import { createReadStream, fstatSync } from 'node:fs';
import { Readable, type Transform } from 'node:stream';
import { DumpError, UsageError, ioError } from '../core/errors.js';
import { FileSource, fileKind, pathKind, type ByteSource } from '../io/source.js';
import { SpillFile, StreamReader, spillSequential } from '../io/spill.js';
import { PROBE_BYTES, openDumpSource } from '../formats/registry.js';
import { probeFlat, rebuildFlatStream } from '../formats/flat/reader.js';
import { KdumpReader } from '../formats/kdump/reader.js';
import { SplitKdumpReader } from '../formats/kdump/split.js';
import type { DumpReader } from '../formats/types.js';

/** The name standard input goes by in messages and reports. */
export const STDIN_NAME = '<stdin>';

export interface InputSpec {
  /** One dump, the parts of a split set, or `-` for standard input. */
  paths: readonly string[];
  /** Directory for spill files (makedumpfile's --work-dir; default: the system temp directory). */
  workDir?: string | undefined;
  /** Most bytes a spill file may take (default: what its file system holds). */
  spillLimit?: number | undefined;
  /** What `-` reads (default: process.stdin). */
  stdin?: Readable | undefined;
}

/** A command's input: a path, the parts of a split set, or a full spec. */
export type DumpInput = string | readonly string[] | InputSpec;

export function inputSpec(input: DumpInput): InputSpec {
  if (typeof input === 'string') return { paths: [input] };
  if (isPathList(input)) return { paths: input };
  return input;
}

function isPathList(input: DumpInput): input is readonly string[] {
  return Array.isArray(input);
}

/** The input's name for reports and map headers: the path, or the parts joined by spaces. */
export function describeInput(input: DumpInput): string {
  return inputSpec(input)
    .paths.map((p) => (p === '-' ? STDIN_NAME : p))
    .join(' ');
}

type Wrap = ((src: ByteSource) => ByteSource) | undefined;

/**
 * Open a command's input as one reader. `wrap` sees every byte source a
 * reader is built on (tests count reads through it).
 */
export async function openInput(input: DumpInput, wrap?: (src: ByteSource) => ByteSource): Promise<DumpReader> {
  const spec = inputSpec(input);
  const paths = spec.paths;
  if (paths.length === 0) throw new UsageError('no input named');
  if (paths.length === 1) return openOne(paths[0]!, spec, wrap, false);
  return openSplitSet(spec, wrap);
}

/**
 * Open the parts of a split set (one part or more) and check that they
 * belong together and cover every pfn. Pages come from the part that
 * holds them.
 */
export async function openSplitSet(input: DumpInput, wrap?: (src: ByteSource) => ByteSource): Promise<SplitKdumpReader> {
  const spec = inputSpec(input);
  const paths = spec.paths;
  if (paths.length === 0) throw new UsageError('no split parts named');
  if (paths.includes('-')) throw new UsageError('standard input (-) cannot be one part of a split set: name the part files');
  const readers: DumpReader[] = [];
  try {
    for (const p of paths) {
      const r = await openOne(p, spec, wrap, true);
      readers.push(r);
      if (!(r instanceof KdumpReader)) {
        throw new DumpError('DUMP_UNSUPPORTED', `a ${r.info.format} dump cannot be part of a split set (only kdump-compressed files are split)`, { file: r.info.file, offset: 0 });
      }
    }
    return SplitKdumpReader.join(readers as KdumpReader[]);
  } catch (err) {
    await Promise.all(readers.map((r) => r.close().catch(() => undefined)));
    throw err;
  }
}

async function openOne(path: string, spec: InputSpec, wrap: Wrap, splitPart: boolean): Promise<DumpReader> {
  if (path === '-') {
    if (spec.stdin) return openStream(spec.stdin, STDIN_NAME, spec, wrap, splitPart);
    let kind: string;
    try {
      kind = fileKind(fstatSync(0));
    } catch (err) {
      throw ioError(err, STDIN_NAME, 'cannot use standard input');
    }
    // Redirected from a file: read it in place, no spill.
    if (kind === 'regular') return openFile('/dev/stdin', STDIN_NAME, spec, wrap, splitPart);
    if (process.stdin.isTTY) throw new UsageError('standard input is a terminal: pipe a dump into it, or name a file');
    return openStream(process.stdin, STDIN_NAME, spec, wrap, splitPart);
  }
  const kind = await pathKind(path);
  if (kind === 'FIFO') return openStream(createReadStream(path), path, spec, wrap, splitPart);
  if (kind !== 'regular') throw new DumpError('IO', `not a regular file (a ${kind})`, { file: path });
  return openFile(path, path, spec, wrap, splitPart);
}

const GZIP_MAGIC = [0x1f, 0x8b];

async function openFile(path: string, name: string, spec: InputSpec, wrap: Wrap, splitPart: boolean): Promise<DumpReader> {
  const src = await FileSource.open(path, name);
  const head = new Uint8Array(2);
  try {
    await src.read(head, 0, 2, 0);
  } catch (err) {
    await src.close();
    throw err;
  }
  const gzip = head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  const brotli = !gzip && name.endsWith('.br');
  if (!gzip && !brotli) {
    return openDumpSource(wrap ? wrap(src) : src, { kdump: { splitPart } }).catch(async (err: unknown) => {
      await src.close();
      throw err;
    });
  }
  await src.close();
  // .br is known by its name only; gzip by its magic (in openStream).
  const raw = createReadStream(path);
  // node:zlib is loaded only for a compressed input (a few ms of every other run's start-up).
  const stream = brotli ? inflating(raw, (await import('node:zlib')).createBrotliDecompress(), name, 'brotli') : raw;
  return openStream(stream, name, spec, wrap, splitPart);
}

/** `raw` through `inflater`, with damaged data reported as DUMP_CORRUPT naming the file. */
function inflating(raw: Readable, inflater: Transform, name: string, kind: string): AsyncIterable<Uint8Array> {
  return (async function* () {
    // Piped when the first chunk is asked for: an error then has a reader.
    raw.on('error', (err) => inflater.destroy(err));
    const out = raw.pipe(inflater);
    try {
      for await (const chunk of out as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      if (err instanceof DumpError) throw err;
      const e = err as NodeJS.ErrnoException;
      if (e.code && (e.code.startsWith('Z_') || e.code.startsWith('ERR_BROTLI') || e.code.startsWith('ERR__'))) {
        throw new DumpError('DUMP_CORRUPT', `${kind} data is damaged (${e.message})`, { file: name });
      }
      throw ioError(err, name, `cannot inflate`);
    } finally {
      raw.destroy();
    }
  })();
}

/** The rest of a StreamReader as an iterable of chunks (for piping through an inflater). */
async function* restOf(r: StreamReader): AsyncGenerator<Uint8Array> {
  for (;;) {
    const c = await r.next(1 << 20);
    if (c.length === 0) return;
    yield c;
  }
}

/**
 * Read a stream into a spill file and open that. A flattened stream is
 * rebuilt (records may come in any order); anything else is copied as it
 * comes. A gzip stream is inflated first.
 */
async function openStream(source: AsyncIterable<Uint8Array | string>, name: string, spec: InputSpec, wrap: Wrap, splitPart: boolean): Promise<DumpReader> {
  const spill = await SpillFile.create({ workDir: spec.workDir, limit: spec.spillLimit, name });
  let input = new StreamReader(source, name);
  const raw = input;
  try {
    const magic = await input.peek(2);
    if (magic[0] === GZIP_MAGIC[0] && magic[1] === GZIP_MAGIC[1]) {
      input = new StreamReader(inflating(Readable.from(restOf(raw)), (await import('node:zlib')).createGunzip(), name, 'gzip'), name);
    }
    const head = await input.peek(PROBE_BYTES);
    let size: number;
    let stored: number;
    let flat: Awaited<ReturnType<typeof rebuildFlatStream>> | undefined;
    if (probeFlat(head)) {
      flat = await rebuildFlatStream(input, spill);
      size = flat.size;
      stored = flat.dataBytes;
    } else {
      size = await spillSequential(input, spill);
      stored = size;
    }
    await spill.finish(size);
    // Whatever follows a flattened stream's end marker is not read.
    await input.close().catch(() => undefined);
    if (input !== raw) await raw.close().catch(() => undefined);
    const src = await FileSource.open(spill.path, name, { storedBytes: stored });
    const reader = await openDumpSource(wrap ? wrap(src) : src, { kdump: { splitPart } }).catch(async (err: unknown) => {
      await src.close();
      throw err;
    });
    const info = reader.info;
    info.fileSize = input.position;
    if (flat) {
      info.format = `flattened-${info.format}`;
      info.details = { ...info.details, 'flattened records': flat.records, 'records going back': flat.backwards, 'rebuilt size': flat.size };
    }
    info.details = { ...info.details, 'read from': 'a stream (spilled)', 'spilled bytes': spill.written };
    const close = reader.close.bind(reader);
    reader.close = async () => {
      try {
        await close();
      } finally {
        await spill.remove();
      }
    };
    return reader;
  } catch (err) {
    await spill.remove();
    await input.close().catch(() => undefined);
    if (input !== raw) await raw.close().catch(() => undefined);
    throw err;
  }
}
