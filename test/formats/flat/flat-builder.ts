/**
 * Dumb flattened-format (makedumpfile -F) tools for fixtures, independent
 * of the production writer and reader: a builder taking records verbatim
 * (any offset, size, order, even nonsense), and a rebuild that does what
 * `makedumpfile -R` does.
 */
export interface FlatRecord {
  offset: number | bigint;
  data?: Uint8Array;
  /** Size field override (default data.length). */
  size?: number | bigint;
}

export function flatHeader(signature = 'makedumpfile', type = 1n, version = 1n): Buffer {
  const h = Buffer.alloc(4096);
  h.write(signature, 0, 'latin1');
  h.writeBigInt64BE(type, 16);
  h.writeBigInt64BE(version, 24);
  return h;
}

export function buildFlat(records: FlatRecord[], opts: { end?: boolean; header?: Buffer } = {}): Uint8Array {
  const parts: Buffer[] = [opts.header ?? flatHeader()];
  for (const r of records) {
    const h = Buffer.alloc(16);
    h.writeBigInt64BE(BigInt(r.offset), 0);
    h.writeBigInt64BE(BigInt(r.size ?? r.data?.length ?? 0), 8);
    parts.push(h);
    if (r.data) parts.push(Buffer.from(r.data));
  }
  if (opts.end !== false) {
    const e = Buffer.alloc(16);
    e.writeBigInt64BE(-1n, 0);
    e.writeBigInt64BE(-1n, 8);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

/** What `makedumpfile -R` makes of a flattened stream: records applied in order. */
export function rebuildFlat(flat: Uint8Array): Uint8Array {
  const b = Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength);
  if (b.toString('latin1', 0, 13) !== 'makedumpfile\0') throw new Error('rebuildFlat: no signature');
  let pos = 4096;
  const recs: Array<[number, Buffer]> = [];
  let size = 0;
  for (;;) {
    const off = b.readBigInt64BE(pos);
    const len = b.readBigInt64BE(pos + 8);
    pos += 16;
    if (off === -1n && len === -1n) break;
    if (off < 0n || len <= 0n) throw new Error(`rebuildFlat: bad record at ${pos - 16}`);
    const data = b.subarray(pos, pos + Number(len));
    if (data.length !== Number(len)) throw new Error('rebuildFlat: truncated');
    recs.push([Number(off), data]);
    size = Math.max(size, Number(off) + data.length);
    pos += Number(len);
  }
  const out = Buffer.alloc(size);
  for (const [off, data] of recs) data.copy(out, off);
  return out;
}

/** The records of a flattened stream as [offset, size] pairs (end marker excluded). */
export function flatRecords(flat: Uint8Array): Array<[number, number]> {
  const b = Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength);
  const out: Array<[number, number]> = [];
  let pos = 4096;
  for (;;) {
    const off = b.readBigInt64BE(pos);
    const len = b.readBigInt64BE(pos + 8);
    if (off === -1n && len === -1n) return out;
    out.push([Number(off), Number(len)]);
    pos += 16 + Number(len);
  }
}
