#!/usr/bin/env node
// Benchmark of `synth`: write a synthetic guest image (16 GiB by default)
// into a temporary folder, report wall time, throughput and peak RSS, and
// delete it. Run `npm run build` first; this imports from dist/.
//
//   node bench/synth.mjs [--size 16G] [--scenario xen-hvm-balloon] [--kernel 6.1] [--keep]
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { synthesize } from '../dist/synth/index.js';
import { parseSize } from '../dist/core/units.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '16G' },
    scenario: { type: 'string', default: 'xen-hvm-balloon' },
    kernel: { type: 'string', default: '6.1' },
    seed: { type: 'string', default: '1' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

const size = parseSize(values.size, '--size');
const dir = await mkdtemp(join(values.dir ?? tmpdir(), 'dumpsieve-bench-synth-'));
const out = join(dir, 'guest.vmcore');
const MB = 1e6;
try {
  const t0 = process.hrtime.bigint();
  let last = 0;
  const r = await synthesize({
    scenario: values.scenario,
    kernel: values.kernel,
    seed: Number(values.seed),
    size,
    out,
    onProgress: (done, total) => {
      const now = Date.now();
      if (process.stderr.isTTY && now - last > 500) {
        last = now;
        process.stderr.write(`\r${((100 * done) / total).toFixed(1)}%`);
      }
    },
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (process.stderr.isTTY) process.stderr.write('\r');
  const st = await stat(out);
  const ru = process.resourceUsage();
  const loadBytes = r.dataPages * 4096;
  const sideBytes = (await Promise.all(Object.values(r.files).filter((f) => f !== out).map((f) => stat(f).then((s) => s.size)))).reduce((a, b) => a + b, 0);
  const report = {
    scenario: r.scenario,
    kernel: r.kernel,
    guestBytes: size,
    imageBytes: st.size,
    imageBytesOnDisk: st.blocks * 512,
    dataPagesWritten: r.dataPages,
    sideFileBytes: sideBytes,
    seconds: Number(secs.toFixed(2)),
    imageMBps: Number((st.size / MB / secs).toFixed(1)),
    writtenMBps: Number((r.writtenBytes / MB / secs).toFixed(1)),
    peakRssMiB: Number((ru.maxRSS / 1024).toFixed(1)),
    userCpuSeconds: Number((ru.userCPUTime / 1e6).toFixed(2)),
    systemCpuSeconds: Number((ru.systemCPUTime / 1e6).toFixed(2)),
  };
  void loadBytes;
  console.log(JSON.stringify(report, null, 2));
} finally {
  if (!values.keep) await rm(dir, { recursive: true, force: true });
  else console.error(`kept ${dir}`);
}
