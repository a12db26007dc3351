/** Progress bars on stderr, only when it is a terminal (cli-progress). */
import cliProgress from 'cli-progress';
import type { CliIO } from './io.js';

export interface ProgressEvent {
  phase: string;
  done: number;
  total: number;
}

export function progressBar(io: CliIO, quiet: boolean): { update(e: ProgressEvent): void; stop(): void } {
  if (quiet || !io.stderrIsTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: io.stderr as NodeJS.WritableStream, format: ' {phase} [{bar}] {percentage}% | {eta_formatted} left', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let phase = '';
  return {
    update(e) {
      if (!started) {
        bar.start(e.total || 1, 0, { phase: e.phase.padEnd(8) });
        started = true;
      }
      if (e.phase !== phase) {
        phase = e.phase;
        bar.setTotal(e.total || 1);
      }
      bar.update(e.done, { phase: e.phase.padEnd(8) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
