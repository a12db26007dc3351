/**
 * A pool of worker threads running the batch page compressor, so that
 * compression of one batch overlaps reading, classifying and writing the
 * next. Buffers travel by transfer (no copies across threads): the caller
 * hands over an input buffer and an output batch and gets both back with
 * the result.
 *
 * Each worker loads a module that runs PageCompressor itself (./worker.ts):
 * the same code as the main thread, so worker output is the main thread's
 * byte for byte. The module is worker-main beside this file: ./worker-main.js
 * in the build, lib/worker-main.mjs in the bundle (scripts/bundle.mjs makes
 * it an entry of its own, so the CLI's entry loads nothing for a worker and
 * a worker nothing of the CLI).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Codec } from './table.js';
import type { CompressedBatch } from './index.js';
import type { WorkerJob, WorkerReply, WorkerSetup } from './worker.js';

/** The module each worker runs. */
export function workerEntry(): URL {
  const here = new URL(import.meta.url);
  if (here.pathname.endsWith('.ts')) {
    // Running from the TypeScript sources (tests): workers run the build of
    // the same sources (test/setup/build.ts builds it when it is stale).
    const built = new URL('../../../../dist/formats/kdump/codecs/worker-main.js', here);
    if (!existsSync(fileURLToPath(built))) throw new Error(`compression workers need the build: ${fileURLToPath(built)} is missing (npm run build)`);
    return built;
  }
  // The bundle's lib/ chunks have lib/worker-main.mjs beside them; the build, worker-main.js.
  return new URL(here.pathname.endsWith('.mjs') ? './worker-main.mjs' : './worker-main.js', here);
}

/** A job's buffers: `input` holds the pages, `batch` receives the result. Both must own whole ArrayBuffers. */
export interface PoolJob {
  input: Uint8Array;
  batch: CompressedBatch;
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
    const workerData: WorkerSetup = { dumpsieveCompressionWorker: true, codec, pageSize };
    const entry = workerEntry();
    this.workers = [];
    this.load = [];
    for (let i = 0; i < threads; i++) {
      // Small heaps: the worker's garbage is page-sized buffers, collected
      // sooner with a small young generation, which keeps RSS low.
      const w = new Worker(entry, { workerData, resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 48 } });
      w.unref();
      w.on('message', (m: WorkerReply) => this.onReply(i, m));
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
    if (this.failure || this.closed) {
      // Rejected like a job in flight would be: handled here, so that a
      // caller awaiting it later does not meet an unhandled rejection first.
      const failed = Promise.reject(this.failure ?? new Error('CompressionPool: closed'));
      failed.catch(() => undefined);
      return failed;
    }
    let w = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[w]!) w = i;
    const id = this.nextId++;
    const worker = this.workers[w]!;
    if (this.load[w]! === 0) worker.ref();
    this.load[w]!++;
    const { input, batch } = job;
    const msg: WorkerJob = {
      id,
      count,
      input: input.buffer as ArrayBuffer,
      data: batch.data.buffer as ArrayBuffer,
      sizes: batch.sizes.buffer as ArrayBuffer,
      flags: batch.flags.buffer as ArrayBuffer,
    };
    const result = new Promise<PoolJob>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, count, worker: w });
      worker.postMessage(msg, [msg.input, msg.data, msg.sizes, msg.flags]);
    });
    // A job abandoned after an error elsewhere must not become an unhandled rejection.
    result.catch(() => undefined);
    return result;
  }

  private onReply(w: number, m: WorkerReply): void {
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
