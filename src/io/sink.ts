/**
 * Output sinks. A dump writer writes at absolute positions of the logical
 * output file; the sink decides how that reaches the disk or the pipe:
 *
 * - AtomicFileSink writes a temp file beside the target and renames it into
 *   place on commit, so a failed or interrupted run leaves nothing behind.
 * - The flattened-format sink (formats/flat) turns positional writes into
 *   records on a stream.
 */
import { writeSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { DumpError, ioError } from '../core/errors.js';
import { onCleanup, runCleanups } from './cleanup.js';
import { turnAfter } from './turn.js';

export interface PositionalSink {
  readonly name: string;
  /** Write `data` at `position` of the logical output. Writes may come in any order. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Make the logical output exactly `size` bytes long (sparse where never written). */
  setLength(size: number): Promise<void>;
  /** Finish: the output becomes visible under its name. */
  commit(): Promise<void>;
  /** Discard everything written. Idempotent; never throws. */
  abort(): Promise<void>;
  /**
   * True when what was written can be rewritten in place and kept after a
   * write error (a file): a writer may then finish an incomplete dump.
   * Streams cannot: what is sent is gone.
   */
  readonly rewritable?: boolean;
}

/**
 * Remembers the first failed write of the sink it wraps (the disk full,
 * an I/O error): a writer consults it to tell its own write errors from
 * errors elsewhere, and only those may leave an incomplete dump behind.
 */
export class WatchedSink implements PositionalSink {
  /** The first write error, if any. */
  failure: unknown;
  constructor(private readonly inner: PositionalSink) {}
  get name(): string {
    return this.inner.name;
  }
  get rewritable(): boolean {
    return this.inner.rewritable === true;
  }
  async write(data: Uint8Array, position: number): Promise<void> {
    try {
      await this.inner.write(data, position);
    } catch (err) {
      this.failure ??= err;
      throw err;
    }
  }
  setLength(size: number): Promise<void> {
    return this.inner.setLength(size);
  }
  commit(): Promise<void> {
    return this.inner.commit();
  }
  abort(): Promise<void> {
    return this.inner.abort();
  }
}

/** Write `length` zero bytes at `position` (reserving space in a file), in chunks of at most 1 MiB. */
export async function writeZeros(sink: PositionalSink, position: number, length: number): Promise<void> {
  const chunk = new Uint8Array(Math.min(length, 1 << 20));
  for (let done = 0; done < length; done += chunk.length) {
    await sink.write(chunk.subarray(0, Math.min(chunk.length, length - done)), position + done);
  }
}

/**
 * Abort every sink not yet committed and remove every other temporary
 * (the CLI calls it on an error and on SIGINT, SIGTERM and SIGHUP).
 */
export async function abortAllSinks(): Promise<void> {
  await runCleanups();
}

/**
 * Permissions of every file dumpsieve writes: a dump holds the guest's
 * memory (keys, passwords), so only its owner may read it, as with
 * makedumpfile.
 */
export const OUTPUT_MODE = 0o600;

/**
 * Eight hex digits that make a temporary name unlikely to be taken (it is
 * created with O_EXCL all the same): not a secret, so Math.random, which
 * spares loading node:crypto at start-up.
 */
function tempTag(): string {
  return Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
}

export class AtomicFileSink implements PositionalSink {
  readonly name: string;
  readonly rewritable = true;
  private fh: FileHandle | undefined;
  private readonly tmp: string;
  private done = false;
  private length = 0;
  private readonly untrack: () => void;

  private constructor(name: string, tmp: string, fh: FileHandle) {
    this.name = name;
    this.tmp = tmp;
    this.fh = fh;
    this.untrack = onCleanup(() => this.abort());
  }

  static async create(path: string): Promise<AtomicFileSink> {
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${tempTag()}.tmp`);
    try {
      const fh = await open(tmp, 'wx', OUTPUT_MODE);
      return new AtomicFileSink(path, tmp, fh);
    } catch (err) {
      throw ioError(err, path, 'cannot create output');
    }
  }

  /**
   * Synchronous pwrite(2)s, as makedumpfile writes: into the page cache a
   * write returns in microseconds, and an asynchronous one through
   * libuv's thread pool left the filter idle waiting for the hand-off
   * (the write pass took twice as long on a 2 GiB guest). The event loop
   * still gets a turn every few MiB (turnAfter).
   */
  async write(data: Uint8Array, position: number): Promise<void> {
    const fh = this.handle();
    let done = 0;
    try {
      while (done < data.length) {
        done += writeSync(fh.fd, data, done, data.length - done, position + done);
      }
    } catch (err) {
      // The offset says how far the write got: what lies before it is in the file.
      const e = ioError(err, this.name, `write at offset 0x${(position + done).toString(16)}`);
      throw e.offset === undefined ? e.withContext({ offset: position + done }) : e;
    }
    if (position + data.length > this.length) this.length = position + data.length;
    const turn = turnAfter(data.length);
    if (turn) await turn;
  }

  async setLength(size: number): Promise<void> {
    try {
      await this.handle().truncate(size);
    } catch (err) {
      throw ioError(err, this.name, 'cannot set length');
    }
    this.length = size;
  }

  get bytes(): number {
    return this.length;
  }

  async commit(): Promise<void> {
    const fh = this.handle();
    this.done = true;
    this.untrack();
    try {
      await fh.close();
      this.fh = undefined;
      await rename(this.tmp, this.name);
    } catch (err) {
      await unlink(this.tmp).catch(() => undefined);
      throw ioError(err, this.name, 'cannot finish output');
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.untrack();
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }

  private handle(): FileHandle {
    if (!this.fh || this.done) throw new DumpError('IO', 'output already closed', { file: this.name });
    return this.fh;
  }
}

/** Write a small file whole, atomically, with the output permissions. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const sink = await AtomicFileSink.create(path);
  try {
    const data = Buffer.from(text, 'utf8');
    await sink.write(data, 0);
    await sink.setLength(data.length);
    await sink.commit();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}

/**
 * Sequential writes to a stream (stdout), honouring backpressure.
 * Not positional: the flattened-format sink builds on it.
 */
export class StreamWriter {
  private failed: Error | undefined;
  bytes = 0;

  constructor(
    private readonly stream: Writable,
    readonly name: string,
  ) {
    stream.on('error', (err) => {
      this.failed = err;
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.failed) throw ioError(this.failed, this.name, 'write failed');
    this.bytes += chunk.length;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          this.stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          this.stream.off('drain', onDrain);
          reject(ioError(err, this.name, 'write failed'));
        };
        this.stream.once('drain', onDrain);
        this.stream.once('error', onError);
      });
    }
  }

  async end(): Promise<void> {
    if (this.failed) throw ioError(this.failed, this.name, 'write failed');
    if (this.stream === process.stdout || this.stream === process.stderr) {
      // Never end the process's standard streams; wait until flushed.
      await new Promise<void>((resolve) => this.stream.write(new Uint8Array(0), () => resolve()));
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.stream.end((err?: Error | null) => (err ? reject(ioError(err, this.name, 'close failed')) : resolve()));
    });
  }
}

/** Register a sink created elsewhere (e.g. a stream sink) for abort on an error or a signal. */
export function trackSink(sink: PositionalSink): () => void {
  return onCleanup(() => sink.abort());
}

/**
 * Sequential appends at increasing positions of a positional sink, through
 * two reused buffers: one fills while the other is being written, so the
 * caller never waits for a sink that writes asynchronously (a stream)
 * unless it is two buffers ahead. A file sink writes synchronously: the
 * write is done when issue() returns.
 */
export class SequentialWriter {
  private cur: Uint8Array;
  private spare: Uint8Array | undefined;
  private fill = 0;
  private bufPos: number;
  private inflight: Promise<void> | undefined;
  /** The logical end: where the next byte goes. */
  position: number;
  /**
   * End of what has reached the sink: every byte in [start, durable) was
   * written. Writes are issued one at a time, in order, so a failed write
   * leaves everything before it intact.
   */
  durable: number;

  constructor(
    private readonly sink: PositionalSink,
    start: number,
    bufSize = 4 << 20,
  ) {
    this.cur = new Uint8Array(bufSize);
    this.bufPos = start;
    this.position = start;
    this.durable = start;
  }

  /** Bytes that put() can take now without a write. */
  get room(): number {
    return this.cur.length - this.fill;
  }

  /** Append bytes that fit in the room left (no write, no wait). */
  put(bytes: Uint8Array): void {
    if (bytes.length > this.cur.length - this.fill) throw new RangeError(`SequentialWriter: ${bytes.length} bytes exceed the room left`);
    this.cur.set(bytes, this.fill);
    this.fill += bytes.length;
    this.position += bytes.length;
  }

  /**
   * Append bytes: they fill the buffer, which is written whenever it is
   * full (so every write but the last is one whole buffer). The caller may
   * reuse `bytes` as soon as this returns.
   */
  async append(bytes: Uint8Array): Promise<void> {
    const cur = this.cur.length;
    if (bytes.length <= cur - this.fill) {
      this.put(bytes);
      return;
    }
    for (let off = 0; off < bytes.length; ) {
      if (this.fill === this.cur.length) await this.issue();
      const n = Math.min(bytes.length - off, this.cur.length - this.fill);
      this.cur.set(off === 0 && n === bytes.length ? bytes : bytes.subarray(off, off + n), this.fill);
      this.fill += n;
      this.position += n;
      off += n;
    }
  }

  async appendZeros(n: number): Promise<void> {
    if (this.fill + n > this.cur.length) await this.issue();
    if (n > this.cur.length) throw new RangeError(`SequentialWriter: ${n} zero bytes exceed the buffer`);
    this.cur.fill(0, this.fill, this.fill + n);
    this.fill += n;
    this.position += n;
  }

  /** Start writing the filled buffer and switch to the other one. */
  private async issue(): Promise<void> {
    if (this.fill === 0) return;
    await this.inflight;
    const buf = this.cur;
    const end = this.bufPos + this.fill;
    const from = this.bufPos;
    const p = this.sink.write(buf.subarray(0, this.fill), from).then(
      () => {
        this.durable = end;
      },
      (err: unknown) => {
        // A write that failed part way (the disk filled up) names where it stopped.
        if (err instanceof DumpError && err.offset !== undefined && err.offset > from && err.offset <= end) this.durable = err.offset;
        throw err;
      },
    );
    // Awaited by the next issue() or drain(); never left unhandled.
    p.catch(() => undefined);
    this.inflight = p;
    this.bufPos += this.fill;
    this.fill = 0;
    this.cur = this.spare ?? new Uint8Array(buf.length);
    this.spare = buf;
  }

  /** Wait for the write in flight, if any, ignoring its outcome (after a failure). */
  async settle(): Promise<void> {
    const p = this.inflight;
    this.inflight = undefined;
    await p?.catch(() => undefined);
  }

  /** Write everything appended so far and wait for it. */
  async drain(): Promise<void> {
    await this.issue();
    const p = this.inflight;
    this.inflight = undefined;
    await p;
  }
}
