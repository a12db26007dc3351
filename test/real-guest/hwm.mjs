/**
 * Preloaded into dumpsieve in a crash guest's capture kernel (NODE_OPTIONS
 * --import, so the launcher's own V8 flags stay as they are): at exit, the
 * main thread prints the process's peak resident set (VmHWM, the kernel's
 * own accounting over all threads) and its resident set by kind.
 */
import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  process.on('exit', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (key) => status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? '?';
    const fields = ['VmHWM', 'VmRSS', 'RssAnon', 'RssFile', 'RssShmem', 'VmPeak'].map((k) => `${k}=${kb(k)}`);
    process.stderr.write(`@@DS capture hwm ${fields.join(' ')}\n`);
  });
}
