/**
 * Monotonic milliseconds from an arbitrary origin, for durations. The
 * global `performance` would do, but touching it loads node:perf_hooks
 * (a few ms of every run's start-up); process.hrtime is already there.
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
