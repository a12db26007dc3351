#!/usr/bin/env node
// Regenerate the real-guest sample: Debian's 6.1 kernel booted in QEMU
// (TCG, -cpu max: 5-level paging, KASLR) with 256 MiB of RAM and 64 MiB
// taken by virtio-balloon, dumped by QEMU's dump-guest-memory and filtered
// by dumpsieve at -d 31 with lzo. Beside it: the guest's own truth (what it
// reported on its console: KPF_OFFLINE ranges and per-flag counts from
// /proc/kpageflags, /proc/meminfo, /proc/iomem; the balloon as QEMU reported
// it; package and QEMU versions) and its own /proc/kpageflags.
// Every run boots a new guest: KASLR, the balloon's pages and the sizes
// differ from one run to the next.
//
// Needs what the real-guest suite needs (qemu-system-x86, busybox-static,
// apt-get with the Debian archive reachable); run `npm run build` first.
//
//   node samples/regenerate-real.mjs
import { execFileSync } from 'node:child_process';
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filterDump } from '../dist/pipeline/filter.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const GUEST = 'sample-6.1-256m';
const NAME = 'real-6.1-balloon';

execFileSync(process.execPath, [join(root, 'test/real-guest/build.mjs'), '--force', GUEST], { stdio: 'inherit' });
const cache = process.env.DUMPSIEVE_REAL_GUEST_CACHE || join(process.env.HOME ?? '', '.cache', 'dumpsieve', 'real-guest');
const dir = join(cache, 'guests', GUEST);
const truth = JSON.parse(await readFile(join(dir, 'truth.json'), 'utf8'));

const out = join(here, `${NAME}.kdump`);
const report = await filterDump({ input: join(dir, truth.files.elf), output: out, dumpLevel: 31, codec: 'lzo' });
await copyFile(join(dir, truth.files.kpageflags), join(here, `${NAME}.kpageflags`));
const { files: _files, seconds: _seconds, ...kept } = truth;
await writeFile(join(here, `${NAME}.truth.json`), JSON.stringify({ ...kept, sample: { file: `${NAME}.kdump`, filter: 'dumpsieve filter -d 31 -l' } }, null, 1) + '\n');

const size = (await stat(out)).size;
const g = truth.guest;
console.log(
  `${NAME}.kdump ${size} bytes: ${truth.kernel.package} ${truth.kernel.version}, ${truth.qemu.version}; ` +
    `balloon ${truth.balloon.inflatedPages} pages, guest KPF_OFFLINE ${g.kpf.bits['23'] ?? 0}, dumpsieve offline ${report.pages.excluded.offline}, ` +
    `kept ${report.pages.kept} pages`,
);
