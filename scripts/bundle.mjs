#!/usr/bin/env node
// Build the self-contained dumpsieve: one directory that runs with only
// the `node` binary (Node.js 20.19 or later), for a kdump initramfs or a
// machine without npm.
//
//   npm run bundle [-- --out DIR] [-- --no-minify]   (default: bundle/; names kept for profiles)
//
// DIR/dumpsieve.mjs   the entry (imports nothing until it knows the command)
// DIR/lib/worker-main.mjs  the compression workers' entry
// DIR/lib/*.mjs       the CLI, its dependencies and the zstd WebAssembly,
//                     as the modules the entries load when they need them
// DIR/dumpsieve       launcher: node with a small heap (DUMPSIEVE_NODE,
//                     DUMPSIEVE_NODE_OPTIONS override), then dumpsieve.mjs
// DIR/dumpsieve-collector  kdump core collector with makedumpfile's command
//                     line, falling back to makedumpfile (contrib/kdump/)
// DIR/LICENSES.txt    licences of the bundled code
// DIR/VERSION         the version bundled
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--out');
const out = resolve(i > 0 ? process.argv[i + 1] : join(root, 'bundle'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/**
 * V8 flags of the launcher: a young generation of 1 MiB semi-spaces (4 MiB
 * made an 8 GiB none run 3 % faster, but peak RSS grew with the guest: a
 * 32 GiB guest's -l run 63 MiB, its -z run 106 MiB), an old generation
 * capped well under the crashkernel reservation, one background thread,
 * and four times V8's default interrupt budget, so that only code that
 * stays hot (the page loops) is optimized by TurboFan: without it a 2 GiB
 * run spent a quarter of its CPU optimizing code that runs a few times
 * (argument parsing, set-up). See docs/kdump.md for the figures.
 */
export const NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=96', '--v8-pool-size=1', '--interrupt-budget=270336'];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

/**
 * string-width, which yargs and cliui import for help text, builds an
 * Intl.Segmenter and Unicode-property regular expressions in its module
 * body: 28 ms of every run's start-up (two copies). In the bundle each
 * import gets a stand-in that measures printable ASCII itself (all of
 * dumpsieve's text) and evaluates the real module only on other text.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData?.real) return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: { real: true } });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      resolveDir: dirname(args.path),
      contents: [
        'let real;',
        'export default function stringWidth(input, options) {',
        '  if (typeof input === "string" && /^[\\x20-\\x7e]*$/.test(input)) return input.length;',
        `  real ??= require(${JSON.stringify(args.path)}).default;`,
        '  return real(input, options);',
        '}',
      ].join('\n'),
    }));
  },
};

const result = await build({
  entryPoints: {
    dumpsieve: join(root, 'src/cli/bin.ts'),
    // Beside the chunks, where codecs/pool.ts looks for it.
    'lib/worker-main': join(root, 'src/formats/kdump/codecs/worker-main.ts'),
  },
  outdir: out,
  // The CLI's dynamic imports become files of their own in lib/: --version,
  // a compression worker and a filter each evaluate only what they use
  // (a -c worker's isolate: 11 MiB less than with the whole CLI in it).
  splitting: true,
  entryNames: '[dir]/[name]',
  chunkNames: 'lib/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  minify: !process.argv.includes('--no-minify'),
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [lazyStringWidth],
  // Some dependencies are CommonJS that call require(): give each module a require of its own.
  banner: { js: "import { createRequire as __dumpsieveRequire } from 'node:module'; const require = __dumpsieveRequire(import.meta.url);" },
});

// Licences of everything bundled (from each package's LICENSE file).
const seen = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (!m || seen.has(m[1])) continue;
  const dir = join(root, 'node_modules', m[1]);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  let text = '';
  for (const f of ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'license', 'LICENCE']) {
    try {
      text = readFileSync(join(dir, f), 'utf8');
      break;
    } catch {
      /* try the next name */
    }
  }
  seen.set(m[1], `${m[1]} ${meta.version} (${meta.license})\n\n${text.trim() || `${meta.license}: see the package.`}\n`);
}
writeFileSync(
  join(out, 'LICENSES.txt'),
  [`dumpsieve ${pkg.version} (${pkg.license})`, ...[...seen.keys()].sort().map((k) => seen.get(k))].join(`\n${'='.repeat(72)}\n\n`),
);
writeFileSync(join(out, 'VERSION'), `${pkg.version}\n`);

const launcher = `#!/bin/sh
# dumpsieve ${pkg.version}, self-contained: needs only node (20.19 or later).
# DUMPSIEVE_NODE: the node binary (default: node on PATH).
# DUMPSIEVE_NODE_OPTIONS: V8/node flags replacing the defaults below.
# NODE_EXTRA_CA_CERTS is dropped: node parses that file before anything
# else runs (34 ms for a system bundle of 144 certificates), and dumpsieve
# opens no TLS connection.
unset NODE_EXTRA_CA_CERTS
self=$(readlink -f "$0")
here=\${self%/*}
exec "\${DUMPSIEVE_NODE:-node}" \${DUMPSIEVE_NODE_OPTIONS:-${NODE_FLAGS.join(' ')}} "$here/dumpsieve.mjs" "$@"
`;
writeFileSync(join(out, 'dumpsieve'), launcher);
chmodSync(join(out, 'dumpsieve'), 0o755);
copyFileSync(join(root, 'contrib/kdump/dumpsieve-collector'), join(out, 'dumpsieve-collector'));
chmodSync(join(out, 'dumpsieve-collector'), 0o755);

const files = Object.keys(result.metafile.outputs);
const size = files.reduce((n, f) => n + statSync(f).size, 0);
console.log(`bundle: ${out} (${files.length} modules, ${(size / 1024).toFixed(0)} KiB, ${seen.size} packages)`);
