#!/usr/bin/env node
// Regenerate the committed sample images: small synthetic guests written
// with `synth`, the image brotli-compressed as NAME.vmcore.br (dumpsieve
// inflates .br and .gz inputs; brotli's 16 MiB window finds the repeated
// page templates that gzip's 32 KiB window cannot), the side files beside
// it uncompressed.
// Run `npm run build` first; this imports from dist/.
//
//   node samples/regenerate.mjs [NAME...]
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants } from 'node:zlib';
import { synthesize } from '../dist/synth/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 2 ** 20;
const LIMIT = 1 * MiB;

/** The samples: name → synth options. Seeds chosen so each small guest holds every class its scenario plants. */
const SAMPLES = {
  'xen-hvm-balloon': { scenario: 'xen-hvm-balloon', kernel: '6.1', size: 32 * MiB, seed: 1 },
  'virtio-balloon': { scenario: 'virtio-balloon', kernel: '6.12', size: 32 * MiB, seed: 1 },
  plain: { scenario: 'plain', kernel: '5.10', size: 32 * MiB, seed: 109 },
  'xen-hvm-balloon-faults': {
    scenario: 'xen-hvm-balloon',
    kernel: '6.1',
    size: 40 * MiB,
    seed: 2,
    faults: ['unflagged-balloon', 'backed-offline', 'kexec-over-balloon', 'kpageflags-mismatch', 'scratch-in-ptload'],
  },
};

const wanted = process.argv.slice(2);
for (const name of wanted) if (!(name in SAMPLES)) throw new Error(`unknown sample ${name} (known: ${Object.keys(SAMPLES).join(', ')})`);

for (const [name, opts] of Object.entries(SAMPLES)) {
  if (wanted.length && !wanted.includes(name)) continue;
  const out = join(here, `${name}.vmcore`);
  const r = await synthesize({ ...opts, out, force: true });
  const raw = await readFile(out);
  const gz = brotliCompressSync(raw, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
  });
  await writeFile(`${out}.br`, gz);
  await rm(out);
  if (gz.length > LIMIT) throw new Error(`${name}.vmcore.br is ${gz.length} bytes, above ${LIMIT}`);
  const side = await Promise.all(
    Object.entries(r.files)
      .filter(([k]) => k !== 'image')
      .map(async ([, f]) => `${f.slice(here.length + 1)} ${(await stat(f)).size}`),
  );
  console.log(`${name}.vmcore.br ${gz.length} bytes (${r.scenario}, Linux ${r.kernel} era, ${r.size / MiB} MiB, seed ${r.seed}); ${side.join(', ')}`);
}
