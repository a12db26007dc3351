#!/usr/bin/env node
// Regenerate the committed sample images: small synthetic guests written
// with `synth`, the image gzip-compressed as NAME.vmcore.gz (dumpsieve
// inflates .gz inputs), the side files beside it uncompressed.
// Run `npm run build` first; this imports from dist/.
//
//   node samples/regenerate.mjs [NAME...]
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { synthesize } from '../dist/synth/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const MiB = 2 ** 20;
const LIMIT = 8 * MiB;

/** The samples: name → synth options. Seeds chosen so each small guest holds every class its scenario plants. */
const SAMPLES = {
  'xen-hvm-balloon': { scenario: 'xen-hvm-balloon', kernel: '6.1', size: 32 * MiB, seed: 1 },
  'virtio-balloon': { scenario: 'virtio-balloon', kernel: '6.12', size: 32 * MiB, seed: 1 },
  plain: { scenario: 'plain', kernel: '5.10', size: 32 * MiB, seed: 109 },

};

const wanted = process.argv.slice(2);
for (const name of wanted) if (!(name in SAMPLES)) throw new Error(`unknown sample ${name} (known: ${Object.keys(SAMPLES).join(', ')})`);

for (const [name, opts] of Object.entries(SAMPLES)) {
  if (wanted.length && !wanted.includes(name)) continue;
  const out = join(here, `${name}.vmcore`);
  const r = await synthesize({ ...opts, out });
  const gz = gzipSync(await readFile(out), { level: 9 });
  await writeFile(`${out}.gz`, gz);
  await rm(out);
  if (gz.length > LIMIT) throw new Error(`${name}.vmcore.gz is ${gz.length} bytes, above ${LIMIT}`);
  const side = await Promise.all(
    Object.entries(r.files)
      .filter(([k]) => k !== 'image')
      .map(async ([, f]) => `${f.slice(here.length + 1)} ${(await stat(f)).size}`),
  );
  console.log(`${name}.vmcore.gz ${gz.length} bytes (${r.scenario}, Linux ${r.kernel} era, ${r.size / MiB} MiB, seed ${r.seed}); ${side.join(', ')}`);
}
