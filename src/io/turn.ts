/**
 * File sources and sinks read and write synchronously (see FileSource),
 * so a loop of reads and writes whose promises are already settled never
 * lets the event loop run: a signal handler (remove the temporary output,
 * exit 143), a progress timer or a worker's reply would wait until the
 * end of the run. turnAfter() counts the bytes moved that way and, every
 * TURN_BYTES, returns a promise that settles after one turn of the event
 * loop (setImmediate: after the poll phase, where signals and messages
 * arrive).
 */
export const TURN_BYTES = 8 << 20;

let since = 0;

/** Count `bytes` of synchronous I/O; a promise to await when the event loop is due a turn, else undefined. */
export function turnAfter(bytes: number): Promise<void> | undefined {
  since += bytes;
  if (since < TURN_BYTES) return undefined;
  since = 0;
  return new Promise((resolve) => setImmediate(resolve));
}
