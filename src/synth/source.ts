/**
 * A synthetic guest's ELF image as a byte source, rendered on demand: the
 * same bytes writeImage() streams to a file, without the file. Tests and
 * benchmarks run the readers on many guests this way without writing
 * hundreds of MiB each.
 */
import type { ByteSource } from '../io/source.js';
import type { Guest } from './guest.js';
import { imageLayout, type ImageSegment } from './image.js';
import { PAGE_SIZE } from './plan.js';

export class GuestImageSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private readonly header: Uint8Array;
  private readonly segments: ImageSegment[];
  private readonly offsets: number[];
  private page = new Uint8Array(0);

  constructor(
    private readonly guest: Guest,
    name = `<synth ${guest.scenario} seed ${guest.seed}>`,
  ) {
    const l = imageLayout(guest);
    this.name = name;
    this.size = l.fileSize;
    this.header = l.header;
    this.segments = l.segments;
    this.offsets = l.offsets;
  }

  async read(buf: Uint8Array, bufOffset: number, length: number, position: number): Promise<number> {
    const n = Math.max(0, Math.min(length, this.size - position));
    if (n === 0) return 0;
    const end = position + n;
    buf.fill(0, bufOffset, bufOffset + n);
    if (position < this.header.length) {
      const e = Math.min(end, this.header.length);
      buf.set(this.header.subarray(position, e), bufOffset);
    }
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      const base = this.offsets[i]!;
      const segEnd = base + (seg.end - seg.start) * PAGE_SIZE;
      const s = Math.max(position, base);
      const e = Math.min(end, segEnd);
      if (s >= e) continue;
      // Whole pages covering [s, e), rendered into a scratch buffer.
      const firstPage = Math.floor((s - base) / PAGE_SIZE);
      const lastPage = Math.ceil((e - base) / PAGE_SIZE);
      const bytes = (lastPage - firstPage) * PAGE_SIZE;
      if (this.page.length < bytes) this.page = new Uint8Array(bytes);
      this.guest.fillPages(seg.start + firstPage, lastPage - firstPage, this.page, 0);
      const from = s - (base + firstPage * PAGE_SIZE);
      buf.set(this.page.subarray(from, from + (e - s)), bufOffset + (s - position));
    }
    return n;
  }

  async close(): Promise<void> {}
}
