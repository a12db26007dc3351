/**
 * makedumpfile's flattened format (-F) as a PositionalSink over a stream:
 * the dump can go to a pipe (ssh, netcat) and `makedumpfile -R FILE`
 * rebuilds the plain file from it (makedumpfile.c write_start_flat_header,
 * write_buffer, write_end_flat_header, rearrange_dumpdata).
 *
 *   4096 bytes   makedumpfile_header: "makedumpfile" NUL-padded to 16 bytes,
 *                type i64 = 1, version i64 = 1 (big-endian), rest zero
 *   records      { offset i64 BE, size i64 BE } then `size` bytes, to be
 *                written at `offset` of the plain file, in any order
 *   end marker   { -1, -1 }
 *
 * A record of size 0 would end makedumpfile -R's loop early (and fail its
 * end check), so none is ever written. The plain file's length is the end
 * of the furthest record; setLength beyond that adds a 1-byte zero record
 * at the last byte.
 */
import { DumpError } from '../../core/errors.js';
import { trackSink, type PositionalSink, type StreamWriter } from '../../io/sink.js';

export const FLAT_HEADER_SIZE = 4096;
export const FLAT_SIGNATURE = 'makedumpfile';
export const FLAT_SIGNATURE_SIZE = 16;
export const FLAT_TYPE = 1;
export const FLAT_VERSION = 1;
export const FLAT_RECORD_HEADER_SIZE = 16;

/** The 4096-byte flattened-format header block. */
export function encodeFlatHeader(): Uint8Array {
  const b = new Uint8Array(FLAT_HEADER_SIZE);
  b.set(Buffer.from(FLAT_SIGNATURE, 'latin1'), 0);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(FLAT_SIGNATURE_SIZE, BigInt(FLAT_TYPE), false);
  dv.setBigInt64(FLAT_SIGNATURE_SIZE + 8, BigInt(FLAT_VERSION), false);
  return b;
}

function setI64BE(dv: DataView, off: number, v: number): void {
  // v is a non-negative safe integer or -1.
  if (v === -1) {
    dv.setInt32(off, -1, false);
    dv.setInt32(off + 4, -1, false);
    return;
  }
  dv.setUint32(off, Math.floor(v / 0x1_0000_0000), false);
  dv.setUint32(off + 4, v % 0x1_0000_0000, false);
}

export class FlatSink implements PositionalSink {
  readonly name: string;
  private started = false;
  private done = false;
  /** End of the furthest record written. */
  private extent = 0;
  private length = -1;
  private records = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly untrack: () => void;

  constructor(private readonly out: StreamWriter) {
    this.name = out.name;
    this.untrack = trackSink(this);
  }

  /** Records written so far (data records, not the header or end marker). */
  get recordCount(): number {
    return this.records;
  }

  /** Bytes sent to the stream so far. */
  get bytes(): number {
    return this.out.bytes;
  }

  write(data: Uint8Array, position: number): Promise<void> {
    if (this.done) return Promise.reject(new DumpError('IO', 'output already closed', { file: this.name }));
    if (!Number.isSafeInteger(position) || position < 0) return Promise.reject(new RangeError(`FlatSink: position ${position}`));
    if (data.length === 0) return Promise.resolve();
    // The stream may hold on to the chunk after write() returns, and callers
    // reuse their buffers: each record goes out as its own copy.
    const rec = new Uint8Array(FLAT_RECORD_HEADER_SIZE + data.length);
    const dv = new DataView(rec.buffer);
    setI64BE(dv, 0, position);
    setI64BE(dv, 8, data.length);
    rec.set(data, FLAT_RECORD_HEADER_SIZE);
    this.extent = Math.max(this.extent, position + data.length);
    this.records++;
    return this.enqueue(rec);
  }

  async setLength(size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`FlatSink: length ${size}`);
    this.length = size;
  }

  async commit(): Promise<void> {
    if (this.done) throw new DumpError('IO', 'output already closed', { file: this.name });
    if (this.length >= 0 && this.length < this.extent) {
      throw new DumpError('IO', `flattened output cannot be cut to ${this.length} bytes: records reach ${this.extent}`, { file: this.name });
    }
    if (this.length > this.extent) {
      // makedumpfile -R makes the file as long as its furthest record.
      await this.write(new Uint8Array(1), this.length - 1);
    }
    const end = new Uint8Array(FLAT_RECORD_HEADER_SIZE);
    const dv = new DataView(end.buffer);
    setI64BE(dv, 0, -1);
    setI64BE(dv, 8, -1);
    await this.enqueue(end);
    this.done = true;
    this.untrack();
    await this.out.end();
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.untrack();
    // Nothing more is written: no end marker, so the stream is recognisably cut short.
    await this.chain.catch(() => undefined);
    await this.out.end().catch(() => undefined);
  }

  /** Write chunks in call order; the header goes first. */
  private enqueue(chunk: Uint8Array): Promise<void> {
    const run = async (): Promise<void> => {
      if (!this.started) {
        this.started = true;
        await this.out.write(encodeFlatHeader());
      }
      await this.out.write(chunk);
    };
    const next = this.chain.then(run);
    // A failure is reported to the caller of this write; later writes see it too.
    this.chain = next;
    return next;
  }
}
