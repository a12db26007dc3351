/**
 * A compression worker: runs PageCompressor (the same code as the main
 * thread) on the batches the pool (./pool.ts) transfers to it, and
 * transfers them back. Started with workerData `{ codec, pageSize }` from
 * ./worker-main.ts (in the bundle lib/worker-main.mjs, an entry of its own).
 */
import { parentPort } from 'node:worker_threads';
import { PageCompressor } from './index.js';
import type { Codec } from './table.js';

/** A job as the pool posts it: the page buffer and the batch's buffers, all transferred. */
export interface WorkerJob {
  id: number;
  count: number;
  input: ArrayBuffer;
  data: ArrayBuffer;
  sizes: ArrayBuffer;
  flags: ArrayBuffer;
}

/** The reply: the same buffers back, with the stored length or an error. */
export interface WorkerReply extends Omit<WorkerJob, 'count'> {
  length?: number;
  error?: string;
}

/** workerData of a compression worker. */
export interface WorkerSetup {
  dumpsieveCompressionWorker: true;
  codec: Codec;
  pageSize: number;
}

export function isCompressionWorker(data: unknown): data is WorkerSetup {
  return typeof data === 'object' && data !== null && (data as WorkerSetup).dumpsieveCompressionWorker === true;
}

/** Serve compression jobs on parentPort until the pool terminates the thread. */
export async function serveCompression(setup: WorkerSetup): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('compression worker started outside a worker thread');
  const compressor = await PageCompressor.create(setup.codec, setup.pageSize);
  const ps = setup.pageSize;
  port.on('message', (m: WorkerJob) => {
    const back = { id: m.id, input: m.input, data: m.data, sizes: m.sizes, flags: m.flags };
    const transfer = [m.input, m.data, m.sizes, m.flags];
    try {
      const out = compressor.compress(new Uint8Array(m.input, 0, m.count * ps), m.count, {
        count: 0,
        sizes: new Uint32Array(m.sizes),
        flags: new Uint32Array(m.flags),
        data: new Uint8Array(m.data),
        length: 0,
      });
      port.postMessage({ ...back, length: out.length } satisfies WorkerReply, transfer);
    } catch (err) {
      port.postMessage({ ...back, error: (err as Error)?.message ?? String(err) } satisfies WorkerReply, transfer);
    }
  });
}
