/**
 * The progress display on standard error, drawn only when it is a
 * terminal: one line for the whole run, naming the phase and its place
 * among the run's phases, with the phase's own time left once it can be
 * estimated:
 *
 *     write 2/2 [##############          ]  56 % 3 s
 *
 * The library reports progress as events (phase, done, total); the line is
 * redrawn at most every REDRAW_MS, and at each phase change and phase end.
 * The time left is the phase's elapsed time scaled by what remains of it,
 * shown after MIN_ETA_MS of the phase: never a guess from the first event.
 */
import type { Writable } from 'node:stream';
import type { CliIO } from './io.js';
import { nowMs } from '../core/clock.js';

export interface ProgressEvent {
  phase: string;
  done: number;
  total: number;
  /**
   * Every phase of the run, in order (the display shows "write 2/2").
   * Optional: without it the command's own list is used.
   */
  phases?: readonly string[] | undefined;
}

export interface ProgressDisplay {
  update(e: ProgressEvent): void;
  /** Clear the line (before a report is printed, or on failure). */
  stop(): void;
}

/** Least time between two redraws. */
export const REDRAW_MS = 100;
/** Time into a phase before its time left is shown. */
export const MIN_ETA_MS = 1000;

export interface DisplayOptions {
  stream: Writable;
  /** Terminal width (default 80). */
  columns?: number | undefined;
  /** The run's phases in order, when the events do not name them. */
  phases?: readonly string[] | undefined;
  /** Clock in milliseconds (tests drive their own). */
  now?: (() => number) | undefined;
}

/** Time left as people read it: `3 s`, `2 min 05 s`, `1 h 20 min`. */
export function formatTimeLeft(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  const m = Math.ceil(s / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/**
 * One line of the display. `index` is 1-based among `count` phases
 * (0: the phase is not in the list); `secondsLeft` undefined while it
 * cannot be estimated.
 */
export function progressLine(p: { phase: string; index: number; count: number; done: number; total: number; secondsLeft?: number | undefined; columns: number }): string {
  const label = p.index > 0 && p.count > 1 ? `${p.phase} ${p.index}/${p.count}` : p.phase;
  // Integer arithmetic first: 29000 of 100000 is 29 %, not 28.999… %.
  const pct = p.total > 0 ? Math.min(100, Math.max(0, Math.floor((p.done * 100) / p.total))) : 100;
  const width = Math.max(10, Math.min(40, p.columns - label.length - 24));
  const filled = p.total > 0 ? Math.min(width, Math.max(0, Math.floor((p.done * width) / p.total))) : width;
  const left = p.secondsLeft !== undefined && Number.isFinite(p.secondsLeft) ? ` ${formatTimeLeft(p.secondsLeft)}` : '';
  return `${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(pct).padStart(3)} %${left}`;
}

export function progressDisplay(o: DisplayOptions): ProgressDisplay {
  const now = o.now ?? nowMs;
  const columns = o.columns && o.columns > 0 ? o.columns : 80;
  let phase: string | undefined;
  let phaseStart = 0;
  let lastDraw = -Infinity;
  let shown = '';
  const draw = (line: string): void => {
    if (line === shown) return;
    o.stream.write(`\r${line}\x1b[K`);
    shown = line;
  };
  return {
    update(e) {
      const t = now();
      const newPhase = e.phase !== phase;
      if (newPhase) {
        phase = e.phase;
        phaseStart = t;
      }
      const end = e.done >= e.total;
      if (!newPhase && !end && t - lastDraw < REDRAW_MS) return;
      lastDraw = t;
      const phases = e.phases ?? o.phases ?? [];
      const elapsed = t - phaseStart;
      const secondsLeft = !end && e.done > 0 && elapsed >= MIN_ETA_MS ? ((elapsed / 1000) * (e.total - e.done)) / e.done : undefined;
      draw(progressLine({ phase: e.phase, index: phases.indexOf(e.phase) + 1, count: phases.length, done: e.done, total: e.total, secondsLeft, columns }));
    },
    stop() {
      if (shown) o.stream.write('\r\x1b[K');
      shown = '';
      phase = undefined;
      lastDraw = -Infinity;
    },
  };
}

const SILENT: ProgressDisplay = { update: () => undefined, stop: () => undefined };

/** The display of a command: on standard error when it is a terminal, unless -q. */
export function progressBar(io: CliIO, quiet: boolean, phases?: readonly string[]): ProgressDisplay {
  if (quiet || !io.stderrIsTTY) return SILENT;
  return progressDisplay({ stream: io.stderr, columns: io.columns, phases });
}
