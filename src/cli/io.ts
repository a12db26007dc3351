/** Where a command writes: injectable so tests can run the CLI in-process. */
import { access } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';

export interface CliIO {
  /** What `-` reads (default: the process's standard input). */
  stdin?: Readable | undefined;
  stdout: Writable;
  stderr: Writable;
  /** stderr is a terminal: the progress display is drawn. */
  stderrIsTTY: boolean;
  /** stdout is a terminal: -F refuses to write a dump there. */
  stdoutIsTTY?: boolean | undefined;
  /** Width of the terminal on stderr (default 80). */
  columns?: number | undefined;
}

export const processIO = (): CliIO => ({
  stdout: process.stdout,
  stderr: process.stderr,
  stderrIsTTY: !!process.stderr.isTTY,
  stdoutIsTTY: !!process.stdout.isTTY,
  columns: process.stderr.columns,
});

export function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}

/** True if something exists at path (a file the command would otherwise clobber). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
