/**
 * Streams as dump inputs. Every command reads its input more than once and
 * out of order (headers, then struct pages wherever mem_map lies, then
 * the kept pages in a second pass), so a stream that cannot seek — standard
 * input, a FIFO, a compressed file — is read once, in order, into a spill
 * file in a work directory and read from there. Memory stays bounded by a
 * few buffers whatever the stream's size; the disk holds what the stream
 * carries, minus runs of zeros (the spill file is sparse).
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DumpError, ioError } from '../core/errors.js';
import { trackSink } from './sink.js';
import { onCleanup } from './cleanup.js';

/**
 * Pulls bytes from an async iterable of chunks (a Readable): exact-size
 * reads and peeks, never holding more than one chunk plus what was asked.
 */
export class StreamReader {
  private readonly it: AsyncIterator<Uint8Array | string>;
  private buf: Uint8Array = new Uint8Array(0);
  private off = 0;
  private ended = false;
  /** Bytes handed out so far (the stream position of the next byte). */
  position = 0;

  constructor(
    source: AsyncIterable<Uint8Array | string>,
    readonly name: string,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  private get avail(): number {
    return this.buf.length - this.off;
  }

  /** Make at least `n` bytes available unless the stream ends first; returns how many are. */
  private async fill(n: number): Promise<number> {
    while (this.avail < n && !this.ended) {
      let r: IteratorResult<Uint8Array | string>;
      try {
        r = await this.it.next();
      } catch (err) {
        throw ioError(err, this.name, 'read failed');
      }
      if (r.done) {
        this.ended = true;
        break;
      }
      const chunk = typeof r.value === 'string' ? Buffer.from(r.value, 'latin1') : r.value;
      if (chunk.length === 0) continue;
      if (this.avail === 0) {
        this.buf = chunk;
        this.off = 0;
      } else {
        const b = new Uint8Array(this.avail + chunk.length);
        b.set(this.buf.subarray(this.off), 0);
        b.set(chunk, this.avail);
        this.buf = b;
        this.off = 0;
      }
    }
    return Math.min(n, this.avail);
  }

  /** The next `n` bytes without consuming them (fewer at the end of the stream). */
  async peek(n: number): Promise<Uint8Array> {
    const k = await this.fill(n);
    return this.buf.subarray(this.off, this.off + k);
  }

  /**
   * Up to `max` bytes (at least 1 unless the stream has ended: then an
   * empty array). The view is valid until the next call.
   */
  async next(max: number): Promise<Uint8Array> {
    if (this.avail === 0) await this.fill(1);
    const k = Math.min(max, this.avail);
    const out = this.buf.subarray(this.off, this.off + k);
    this.off += k;
    this.position += k;
    return out;
  }

  /** Exactly `n` bytes into a new array, or fewer if the stream ends (the caller checks). */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const c = await this.next(n - done);
      if (c.length === 0) break;
      out.set(c, done);
      done += c.length;
    }
    return out.subarray(0, done);
  }

  /** Stop reading (the source is not consumed further). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

export interface SpillOptions {
  /** Directory for the spill file (default: the system temp directory). */
  workDir?: string | undefined;
  /** Most bytes written into the spill file (default: what the file system holds). */
  limit?: number | undefined;
  /** The stream's name, for messages. */
  name: string;
}

const BLOCK = 4096;
const ZERO = new Uint8Array(BLOCK);

/**
 * A sparse temporary file written at any positions: 4 KiB blocks of zeros
 * beyond everything written so far are left as holes. Removed by
 * `remove()`, by the CLI's abort on a signal, and at process exit.
 */
export class SpillFile {
  readonly path: string;
  readonly dir: string;
  private fh: FileHandle | undefined;
  /** End of the furthest write (bytes beyond it read as zeros). */
  private highWater = 0;
  /** Bytes really written (rewrites count again). */
  written = 0;
  private readonly limit: number;
  private readonly name: string;
  private removed = false;
  private readonly untrack: () => void;
  private readonly onExit: () => void;

  private constructor(dir: string, fh: FileHandle, opts: SpillOptions) {
    this.dir = dir;
    this.path = join(dir, 'spill');
    this.fh = fh;
    this.limit = opts.limit ?? Number.POSITIVE_INFINITY;
    this.name = opts.name;
    // On SIGINT (and whatever else aborts the CLI's sinks) and at exit.
    this.untrack = trackSink({
      name: this.path,
      write: () => Promise.resolve(),
      setLength: () => Promise.resolve(),
      commit: () => Promise.resolve(),
      abort: () => this.remove(),
    });
    this.onExit = () => {
      if (!this.removed) rmSync(dir, { recursive: true, force: true });
    };
    process.on('exit', this.onExit);
  }

  static async create(opts: SpillOptions): Promise<SpillFile> {
    const base = opts.workDir ?? tmpdir();
    let dir: string;
    try {
      // Synchronous, so that no signal can come between making the folder
      // and registering its removal.
      dir = mkdtempSync(join(base, 'dumpsieve-spill-'));
    } catch (err) {
      throw ioError(err, base, `cannot make a spill directory for ${opts.name} (--work-dir)`);
    }
    const removeDir = (): Promise<void> => rm(dir, { recursive: true, force: true });
    const forget = onCleanup(removeDir);
    try {
      const fh = await open(join(dir, 'spill'), 'wx+', 0o600);
      forget();
      return new SpillFile(dir, fh, opts);
    } catch (err) {
      forget();
      await removeDir();
      throw ioError(err, dir, `cannot create a spill file for ${opts.name}`);
    }
  }

  /** Write `data` at `pos`; zero blocks past everything written stay holes. */
  async write(data: Uint8Array, pos: number): Promise<void> {
    const fh = this.handle();
    let i = 0;
    const n = data.length;
    while (i < n) {
      // Pieces aligned to the file's 4 KiB blocks.
      const blockEnd = Math.min(n, (Math.floor((pos + i) / BLOCK) + 1) * BLOCK - pos);
      const skip = pos + i >= this.highWater && isZero(data, i, blockEnd);
      if (skip) {
        i = blockEnd;
        continue;
      }
      // Extend over following pieces that must be written.
      let j = blockEnd;
      while (j < n) {
        const e = Math.min(n, j + BLOCK);
        if (pos + j >= this.highWater && isZero(data, j, e)) break;
        j = e;
      }
      await this.put(fh, data, i, j - i, pos + i);
      i = j;
    }
    if (pos + n > this.highWater) this.highWater = pos + n;
  }

  private async put(fh: FileHandle, data: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    if (this.written + len > this.limit) {
      throw new DumpError(
        'DUMP_LIMIT_EXCEEDED',
        `reading it needs more than the spill limit of ${this.limit} bytes (writing ${len} bytes at ${pos}; --spill-limit)`,
        { file: this.name },
      );
    }
    let done = 0;
    try {
      while (done < len) {
        const { bytesWritten } = await fh.write(data, off + done, len - done, pos + done);
        done += bytesWritten;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'EFBIG') {
        throw new DumpError('IO', `the spill file in ${this.dir} ran out of space after ${this.written + done} bytes (${e.code}); give --work-dir on a larger file system`, {
          file: this.name,
        });
      }
      throw ioError(err, this.name, `cannot write the spill file in ${this.dir}`);
    }
    this.written += len;
  }

  /** Make the file exactly `size` bytes long and close it for writing. */
  async finish(size: number): Promise<void> {
    const fh = this.handle();
    try {
      await fh.truncate(size);
    } catch (err) {
      throw ioError(err, this.name, `cannot size the spill file in ${this.dir}`);
    }
    this.fh = undefined;
    await fh.close();
  }

  /** Delete the spill (idempotent, never throws). */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    this.untrack();
    process.off('exit', this.onExit);
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private handle(): FileHandle {
    if (!this.fh) throw new Error('spill file is closed');
    return this.fh;
  }
}

function isZero(b: Uint8Array, from: number, to: number): boolean {
  const len = to - from;
  if (len === BLOCK) return Buffer.compare(Buffer.from(b.buffer, b.byteOffset + from, len), ZERO) === 0;
  for (let k = from; k < to; k++) if (b[k] !== 0) return false;
  return true;
}

/** Copy the rest of `input` into `spill` from position 0. Returns the byte count. */
export async function spillSequential(input: StreamReader, spill: SpillFile): Promise<number> {
  let pos = 0;
  for (;;) {
    const c = await input.next(1 << 20);
    if (c.length === 0) break;
    await spill.write(c, pos);
    pos += c.length;
  }
  return pos;
}
