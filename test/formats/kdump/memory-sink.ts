/**
 * An in-memory PositionalSink for tests: keeps every byte written, the
 * write calls in order, and whether it was committed or aborted.
 */
import type { PositionalSink } from '../../../src/io/sink.js';

export class MemorySink implements PositionalSink {
  readonly name: string;
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  readonly writes: Array<[position: number, length: number]> = [];
  committed = false;
  aborted = false;
  lengthSet: number | undefined;

  constructor(name = 'out.kdump') {
    this.name = name;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    if (this.committed || this.aborted) throw new Error('MemorySink: closed');
    this.writes.push([position, data.length]);
    this.ensure(position + data.length);
    this.buf.set(data, position);
    this.len = Math.max(this.len, position + data.length);
  }

  async setLength(size: number): Promise<void> {
    this.ensure(size);
    if (size < this.len) this.buf.fill(0, size, this.len);
    this.len = size;
    this.lengthSet = size;
  }

  async commit(): Promise<void> {
    this.committed = true;
  }

  async abort(): Promise<void> {
    this.aborted = true;
  }

  /** The logical file. */
  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
}
