/**
 * Text side files (RAM-oracle inputs, kexec segment lists) read as a stream
 * of lines: a regular file only (a FIFO or a device is refused before
 * anything is read, so nothing blocks or grows without bound), at most
 * `maxBytes` bytes and `maxLine` characters a line, 64 KiB read at a time.
 * The consumer throws at its first bad line and reading stops there: a
 * malformed file costs one chunk of memory, whatever its size.
 */
import { StringDecoder } from 'node:string_decoder';
import { InputError, ioError } from '../core/errors.js';
import { openRegular } from './source.js';

export interface LineLimits {
  /** What the file is, for messages ("Xen HVM memory-type file"). */
  what: string;
  /** Largest file read (bytes). */
  maxBytes: number;
  /** Longest line (characters, without the newline). */
  maxLine?: number | undefined;
}

export interface TextLine {
  /** 1-based line number. */
  no: number;
  /** The line without its newline (and without a trailing CR). */
  text: string;
}

const CHUNK = 64 << 10;
const DEFAULT_MAX_LINE = 4096;

/** The lines of a text side file; errors are InputError (exit 2) naming the file and line. */
export async function* readLines(path: string, limits: LineLimits): AsyncGenerator<TextLine> {
  const maxLine = limits.maxLine ?? DEFAULT_MAX_LINE;
  const { fh, size } = await openRegular(path, path, (d) => new InputError(`${limits.what}: ${d}`, { file: path }), `cannot read ${limits.what}`);
  try {
    if (size > limits.maxBytes) throw new InputError(`${limits.what} is ${size} bytes, above the limit of ${limits.maxBytes}`, { file: path });
    const buf = Buffer.alloc(CHUNK);
    const dec = new StringDecoder('utf8');
    let pending = '';
    let no = 0;
    let pos = 0;
    const tooLong = (): InputError => new InputError(`line longer than ${maxLine} characters`, { file: path, line: no + 1 });
    for (;;) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, CHUNK, pos));
      } catch (err) {
        throw ioError(err, path, `cannot read ${limits.what}`);
      }
      if (n === 0) break;
      pos += n;
      // The file may grow while it is read: the bound holds for what is read.
      if (pos > limits.maxBytes) throw new InputError(`${limits.what} is more than ${limits.maxBytes} bytes`, { file: path });
      const text = pending + dec.write(buf.subarray(0, n));
      let start = 0;
      for (;;) {
        const nl = text.indexOf('\n', start);
        if (nl < 0) break;
        if (nl - start > maxLine + 1) throw tooLong();
        no++;
        yield { no, text: stripCr(text.slice(start, nl)) };
        start = nl + 1;
      }
      pending = text.slice(start);
      if (pending.length > maxLine + 1) throw tooLong();
    }
    const last = pending + dec.end();
    if (last.length > 0) {
      if (last.length > maxLine + 1) throw tooLong();
      yield { no: no + 1, text: stripCr(last) };
    }
  } finally {
    await fh.close();
  }
}

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

/** The lines of a text held in memory, as readLines gives them. */
export function* textLines(text: string): Generator<TextLine> {
  const lines = text.split('\n');
  // A final newline does not start another line.
  const n = lines.length > 0 && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length;
  for (let i = 0; i < n; i++) yield { no: i + 1, text: stripCr(lines[i]!) };
}
