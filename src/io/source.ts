/**
 * Positional byte sources. Every reader in dumpsieve reads through this
 * interface: bounded reads at absolute positions into caller-owned buffers.
 * Nothing ever reads a whole file.
 */
import { constants, readSync, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { DumpError, ioError } from '../core/errors.js';
import { turnAfter } from './turn.js';

export interface ByteSource {
  /** The name the user gave (used in error messages). */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /**
   * Bytes the source really holds, when fewer than `size` (a flattened
   * file's records, a spilled stream): the bound for work a header asks
   * for. Absent: `size`.
   */
  readonly storedBytes?: number | undefined;
  /**
   * Read up to `length` bytes at `position` into `buf[bufOffset..]`.
   * Returns the number of bytes read; fewer than asked only at end of file.
   */
  read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Read exactly `length` bytes or fail with DUMP_TRUNCATED naming what was
 * being read (`what`: the words, or a function making them, for reads in
 * hot loops that fail only on a truncated file).
 */
export async function readExact(
  src: ByteSource,
  buf: Uint8Array,
  bufOffset: number,
  length: number,
  position: number,
  what: string | (() => string),
): Promise<void> {
  if (position + length > src.size) {
    if (typeof what === 'function') what = what();
    throw new DumpError(
      'DUMP_TRUNCATED',
      `${what} needs ${length} bytes but the file ends at ${src.size}`,
      { file: src.name, offset: position },
    );
  }
  let done = 0;
  while (done < length) {
    const n = await src.read(buf, bufOffset + done, length - done, position + done);
    if (n <= 0) {
      if (typeof what === 'function') what = what();
      throw new DumpError('DUMP_TRUNCATED', `${what}: file ended after ${done} of ${length} bytes`, {
        file: src.name,
        offset: position + done,
      });
    }
    done += n;
  }
}

/** What kind of file a stat describes: 'regular', 'FIFO', 'directory', ... */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'regular';
  if (st.isFIFO()) return 'FIFO';
  if (st.isDirectory()) return 'directory';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** The kind of file at `path` (fileKind), without opening it (a FIFO is not waited on). */
export async function pathKind(path: string, name = path): Promise<string> {
  try {
    return fileKind(await stat(path));
  } catch (err) {
    throw ioError(err, name, 'cannot open');
  }
}

/**
 * Open a regular file read-only without ever blocking: O_NONBLOCK, then
 * fstat; anything but a regular file (a FIFO, a device, a directory) is
 * refused with "not a regular file". `error` makes the error (a dump input
 * and a side input differ in their exit code).
 */
export async function openRegular(
  path: string,
  name: string,
  error: (detail: string) => DumpError = (d) => new DumpError('IO', d, { file: name }),
  cannotOpen = 'cannot open',
): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'EISDIR' ? error('not a regular file (a directory)') : ioError(err, name, cannotOpen);
  }
  let st: Stats;
  try {
    st = await fh.stat();
  } catch (err) {
    await fh.close();
    throw ioError(err, name, 'cannot stat');
  }
  if (!st.isFile()) {
    await fh.close();
    throw error(`not a regular file (a ${fileKind(st)})`);
  }
  return { fh, size: st.size };
}

/** A file opened read-only. */
export class FileSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  readonly storedBytes: number | undefined;
  private readonly fh: FileHandle;

  private constructor(name: string, fh: FileHandle, size: number, storedBytes?: number) {
    this.name = name;
    this.fh = fh;
    this.size = size;
    this.storedBytes = storedBytes;
  }

  /**
   * Open a regular file (anything else is refused with one line, without
   * blocking). `storedBytes`: for a sparse spill of a stream, the bytes the
   * stream really carried.
   */
  static async open(path: string, name = path, opts: { storedBytes?: number } = {}): Promise<FileSource> {
    const { fh, size } = await openRegular(path, name);
    return new FileSource(name, fh, size, opts.storedBytes);
  }

  /**
   * A synchronous pread(2) behind the promise: a dump is read by one loop
   * that waits for every read anyway, and going through libuv's thread
   * pool cost a thread hand-off per read (measured: the none-mode write
   * pass of a 2 GiB guest idled 85 % of its time; see bench/README.md).
   * The event loop still gets a turn every few MiB (turnAfter).
   */
  async read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    if (length === 0 || position >= this.size) return 0;
    let n: number;
    try {
      n = readSync(this.fh.fd, buf, bufOffset, Math.min(length, this.size - position), position);
    } catch (err) {
      throw ioError(err, this.name, `read at offset 0x${position.toString(16)}`);
    }
    const turn = turnAfter(n);
    if (turn) await turn;
    return n;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** An in-memory source, for tests and small embedded inputs. */
export class BufferSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  constructor(
    private readonly data: Uint8Array,
    name = '<buffer>',
  ) {
    this.name = name;
    this.size = data.length;
  }
  async read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    if (position >= this.size) return 0;
    const n = Math.min(length, this.size - position);
    buf.set(this.data.subarray(position, position + n), bufOffset);
    return n;
  }
  async close(): Promise<void> {}
}

/**
 * A view of part of another source: bytes [base, base+size) of `inner`
 * appear at [0, size). Used for files embedded in other files.
 */
export class SliceSource implements ByteSource {
  readonly name: string;
  constructor(
    private readonly inner: ByteSource,
    private readonly base: number,
    readonly size: number,
  ) {
    this.name = inner.name;
  }
  read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    if (position >= this.size) return Promise.resolve(0);
    return this.inner.read(buf, bufOffset, Math.min(length, this.size - position), this.base + position);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Counts bytes read through it (for the "bytes read from the source" figure). */
export class MeteredSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  bytesRead = 0;
  reads = 0;
  readonly storedBytes: number | undefined;
  constructor(private readonly inner: ByteSource) {
    this.name = inner.name;
    this.size = inner.size;
    this.storedBytes = inner.storedBytes;
  }
  async read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    const n = await this.inner.read(buf, bufOffset, length, position);
    this.bytesRead += n;
    this.reads++;
    return n;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Records every byte range read from the wrapped source. Tests use it to
 * prove that a pass never touched given parts of a file.
 */
export class CountingSource extends MeteredSource {
  /** [position, end) of each read, in call order. */
  readonly ranges: Array<[number, number]> = [];

  override async read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    const n = await super.read(buf, bufOffset, length, position);
    if (n > 0) this.ranges.push([position, position + n]);
    return n;
  }

  /** True if any recorded read overlaps [start, end). */
  touched(start: number, end: number): boolean {
    return this.ranges.some(([s, e]) => s < end && start < e);
  }
}
