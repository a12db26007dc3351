/** Where a command writes: injectable so tests can run the CLI in-process. */
import type { Readable, Writable } from 'node:stream';

export interface CliIO {
  /** What `-` reads (default: the process's standard input). */
  stdin?: Readable | undefined;
  stdout: Writable;
  stderr: Writable;
  /** stderr is a terminal: progress bars are drawn. */
  stderrIsTTY: boolean;
}

export const processIO = (): CliIO => ({
  stdout: process.stdout,
  stderr: process.stderr,
  stderrIsTTY: !!process.stderr.isTTY,
});

export function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
