/** Entry module of a compression worker started from the library (dist/formats/kdump/codecs/worker-main.js). */
import { workerData } from 'node:worker_threads';
import { isCompressionWorker, serveCompression } from './worker.js';

if (isCompressionWorker(workerData)) await serveCompression(workerData);
