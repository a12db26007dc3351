// Shared helpers of the benchmark scripts: run a command under
// /usr/bin/time -v and read back wall time, CPU time and peak RSS.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'bin', 'dumpsieve.js');

export function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}

/** Run `cmd args` under /usr/bin/time -v (with `env` added); fails loudly on a non-zero exit (or one not in `ok`). */
export function timed(cmd, args, ok = [0], env = {}) {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, ...env } });
  if (!ok.includes(r.status)) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  const get = (re) => Number((re.exec(r.stderr) ?? [])[1]);
  const wall = /Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  const seconds = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN;
  return {
    rssMiB: get(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    seconds,
    cpu: get(/User time \(seconds\): ([\d.]+)/) + get(/System time \(seconds\): ([\d.]+)/),
    user: get(/User time \(seconds\): ([\d.]+)/),
    system: get(/System time \(seconds\): ([\d.]+)/),
    stdout: r.stdout,
    status: r.status,
  };
}

/** Synthesize a guest with the CLI; returns its JSON summary and the run's figures. */
export function synth(scenario, out, size, kernel, extra = []) {
  const r = timed(process.execPath, [cli, 'synth', '-q', '--json', scenario, out, '--size', size, '--kernel', kernel, ...extra]);
  return { info: JSON.parse(r.stdout), run: r };
}
