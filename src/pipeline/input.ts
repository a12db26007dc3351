/**
 * Opening the input of a command: a dump file (ELF, kdump-compressed,
 * flattened), or a gzip (by its magic) or brotli (`.br`) compressed copy,
 * which is inflated to a sparse temporary file first (dump readers need
 * positional access).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type { Transform } from 'node:stream';
import { DumpError, ioError } from '../core/errors.js';
import { FileSource, type ByteSource } from '../io/source.js';
import { onCleanup } from '../io/cleanup.js';
import { openDumpSource } from '../formats/registry.js';
import type { DumpReader } from '../formats/types.js';

const GZIP_MAGIC = [0x1f, 0x8b];

/** Open a dump by path; .gz inputs are inflated to a temporary sparse file removed on close. */
export async function openInput(path: string, wrap?: (src: ByteSource) => ByteSource): Promise<DumpReader> {
  const src = await FileSource.open(path);
  const head = new Uint8Array(2);
  await src.read(head, 0, 2, 0);
  const gzip = head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  const brotli = !gzip && path.endsWith('.br');
  if (!gzip && !brotli) {
    return openDumpSource(wrap ? wrap(src) : src).catch(async (err: unknown) => {
      await src.close();
      throw err;
    });
  }
  await src.close();
  const dir = await mkdtemp(join(tmpdir(), 'dumpsieve-inflate-'));
  const removeDir = (): Promise<void> => rm(dir, { recursive: true, force: true });
  // Removed on close, on an error, and on SIGINT, SIGTERM or SIGHUP.
  const forget = onCleanup(removeDir);
  const tmp = join(dir, 'image');
  try {
    await inflateSparse(path, tmp, gzip ? createGunzip() : createBrotliDecompress(), gzip ? 'gzip' : 'brotli');
    const inner = await FileSource.open(tmp, path);
    const reader = await openDumpSource(wrap ? wrap(inner) : inner).catch(async (err: unknown) => {
      await inner.close();
      throw err;
    });
    const close = reader.close.bind(reader);
    reader.close = async () => {
      await close();
      forget();
      await removeDir();
    };
    return reader;
  } catch (err) {
    forget();
    await removeDir();
    throw err;
  }
}

/** Inflate a compressed file, leaving all-zero 4 KiB blocks as holes. */
async function inflateSparse(from: string, to: string, inflater: Transform, kind: string): Promise<void> {
  const fh = await open(to, 'w');
  const BLOCK = 4096;
  let pos = 0;
  let pending = Buffer.alloc(0);
  const zero = Buffer.alloc(BLOCK);
  const flush = async (buf: Buffer): Promise<void> => {
    for (let off = 0; off < buf.length; off += BLOCK) {
      const end = Math.min(buf.length, off + BLOCK);
      if (end - off === BLOCK && buf.compare(zero, 0, BLOCK, off, end) === 0) continue;
      await fh.write(buf, off, end - off, pos + off);
    }
    pos += buf.length;
  };
  try {
    const raw = createReadStream(from);
    raw.on('error', (err) => inflater.destroy(err));
    const stream = raw.pipe(inflater);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const whole = buf.length - (buf.length % BLOCK);
      await flush(buf.subarray(0, whole));
      pending = Buffer.from(buf.subarray(whole));
    }
    if (pending.length) await flush(pending);
    await fh.truncate(pos);
  } catch (err) {
    if (err instanceof DumpError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code && (e.code.startsWith('Z_') || e.code.startsWith('ERR_BROTLI') || e.code.startsWith('ERR__'))) {
      throw new DumpError('DUMP_CORRUPT', `${kind} data is damaged (${e.message})`, { file: from });
    }
    throw ioError(err, from, 'cannot inflate');
  } finally {
    await fh.close();
  }
}
