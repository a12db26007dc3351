/**
 * A pool of worker threads running the batch page compressor, so that
 * compression of one batch overlaps reading, classifying and writing the
 * next. Buffers travel by transfer (no copies across threads): the caller
 * hands over an input buffer and an output batch and gets both back with
 * the result.
 *
 * The worker is plain JavaScript evaluated from a string, loading the
 * native codec packages by absolute path: it runs the same way from the
 * TypeScript sources (tests) and from the build. It follows exactly the
 * algorithm of PageCompressor (index.ts); a test holds the two to
 * byte-identical output.
 */
import { Worker } from 'node:worker_threads';
import type { Codec } from '../../types.js';
import { CODEC_FLAG, CODEC_MODULES, ZLIB_LEVEL, ZSTD_LEVEL, type CompressedBatch } from './index.js';

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const { codec, pageSize: ps, flag, modules, zlibLevel, zstdLevel } = workerData;
let one;
if (codec === 'zlib') {
  one = (page) => zlib.deflateSync(page, { level: zlibLevel, chunkSize: ps });
} else if (codec === 'lzo') {
  const lzo = require(modules.lzo);
  one = (page) => lzo.compress(page);
} else if (codec === 'snappy') {
  const snappy = require(modules.snappy);
  one = (page) => snappy.compressSync(page);
} else if (codec === 'zstd') {
  const z = require(modules.zstd);
  const cctx = new z.CCtx();
  const scratch = Buffer.alloc(z.compressBound(ps));
  one = (page) => scratch.subarray(0, cctx.compress(scratch, page, zstdLevel));
} else {
  one = (page) => page;
}
parentPort.on('message', (m) => {
  const transfer = [m.input, m.data, m.sizes, m.flags];
  try {
    const input = Buffer.from(m.input, 0, m.count * ps);
    const data = new Uint8Array(m.data);
    const sizes = new Uint32Array(m.sizes);
    const flags = new Uint32Array(m.flags);
    let pos = 0;
    for (let i = 0; i < m.count; i++) {
      const page = input.subarray(i * ps, (i + 1) * ps);
      const c = flag === 0 ? page : one(page);
      if (c.length < ps) {
        data.set(c, pos);
        sizes[i] = c.length;
        flags[i] = flag;
        pos += c.length;
      } else {
        data.set(page, pos);
        sizes[i] = ps;
        flags[i] = 0;
        pos += ps;
      }
    }
    parentPort.postMessage({ id: m.id, input: m.input, data: m.data, sizes: m.sizes, flags: m.flags, length: pos }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: m.id, input: m.input, data: m.data, sizes: m.sizes, flags: m.flags, error: String((err && err.message) || err) }, transfer);
  }
});
`;

/** A job's buffers: `input` holds the pages, `batch` receives the result. Both must own whole ArrayBuffers. */
export interface PoolJob {
  input: Uint8Array;
  batch: CompressedBatch;
}

interface Reply {
  id: number;
  input: ArrayBuffer;
  data: ArrayBuffer;
  sizes: ArrayBuffer;
  flags: ArrayBuffer;
  length?: number;
  error?: string;
}

interface Pending {
  resolve: (job: PoolJob) => void;
  reject: (err: Error) => void;
  count: number;
  worker: number;
}

/** Allocate job buffers that can be transferred (never slices of a shared pool). */
export function allocPoolJob(maxPages: number, pageSize: number): PoolJob {
  return {
    input: new Uint8Array(new ArrayBuffer(maxPages * pageSize)),
    batch: {
      count: 0,
      sizes: new Uint32Array(new ArrayBuffer(maxPages * 4)),
      flags: new Uint32Array(new ArrayBuffer(maxPages * 4)),
      data: new Uint8Array(new ArrayBuffer(maxPages * pageSize)),
      length: 0,
    },
  };
}

export class CompressionPool {
  private readonly workers: Worker[];
  private readonly load: number[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;

  private constructor(
    readonly codec: Codec,
    readonly pageSize: number,
    threads: number,
  ) {
    const workerData = {
      codec,
      pageSize,
      flag: CODEC_FLAG[codec],
      modules: { ...CODEC_MODULES },
      zlibLevel: ZLIB_LEVEL,
      zstdLevel: ZSTD_LEVEL,
    };
    this.workers = [];
    this.load = [];
    for (let i = 0; i < threads; i++) {
      // Small heaps: the worker's garbage is page-sized buffers, collected
      // sooner with a small young generation, which keeps RSS low.
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 } });
      w.unref();
      w.on('message', (m: Reply) => this.onReply(i, m));
      w.on('error', (err) => this.fail(new Error(`compression worker ${i} failed: ${err.message}`)));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`compression worker ${i} exited (code ${code})`));
      });
      this.workers.push(w);
      this.load.push(0);
    }
  }

  /** A pool of `threads` workers compressing pages of `pageSize` with `codec`. */
  static create(codec: Codec, pageSize: number, threads: number): CompressionPool {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`CompressionPool: ${threads} threads`);
    return new CompressionPool(codec, pageSize, threads);
  }

  get threads(): number {
    return this.workers.length;
  }

  /**
   * Compress the first `count` pages of `job.input` into `job.batch`. The
   * job's buffers are transferred to a worker and come back in the
   * resolved job (the objects passed in are unusable until then).
   */
  run(job: PoolJob, count: number): Promise<PoolJob> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('CompressionPool: closed'));
    let w = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[w]!) w = i;
    const id = this.nextId++;
    const worker = this.workers[w]!;
    if (this.load[w]! === 0) worker.ref();
    this.load[w]!++;
    const { input, batch } = job;
    const msg = { id, count, input: input.buffer, data: batch.data.buffer, sizes: batch.sizes.buffer, flags: batch.flags.buffer };
    const result = new Promise<PoolJob>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, count, worker: w });
      worker.postMessage(msg, [msg.input, msg.data, msg.sizes, msg.flags] as ArrayBuffer[]);
    });
    // A job abandoned after an error elsewhere must not become an unhandled rejection.
    result.catch(() => undefined);
    return result;
  }

  private onReply(w: number, m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.release(w);
    if (m.error !== undefined) {
      p.reject(new Error(`compression worker ${w}: ${m.error}`));
      return;
    }
    p.resolve({
      input: new Uint8Array(m.input),
      batch: {
        count: p.count,
        sizes: new Uint32Array(m.sizes),
        flags: new Uint32Array(m.flags),
        data: new Uint8Array(m.data),
        length: m.length ?? 0,
      },
    });
  }

  private release(w: number): void {
    this.load[w]!--;
    if (this.load[w] === 0) this.workers[w]!.unref();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      this.release(p.worker);
      p.reject(err);
    }
  }

  /** Stop the workers. Idempotent; pending jobs are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('CompressionPool: closed');
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(err);
    }
    await Promise.all(this.workers.map((w) => w.terminate().catch(() => 0)));
  }
}
