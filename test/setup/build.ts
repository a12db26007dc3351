/**
 * Vitest global setup: compression workers run the build of the sources
 * (dist/, see src/formats/kdump/codecs/pool.ts), so build it when a source
 * file is newer than it. `npm test` builds first anyway; this keeps a
 * targeted `npx vitest run test/...` honest after an edit.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

function newest(dir: string, ext: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  let built = 0;
  try {
    built = statSync(join(root, 'dist/formats/kdump/codecs/worker-main.js')).mtimeMs;
  } catch {
    /* not built yet */
  }
  if (built >= newest(join(root, 'src'), '.ts')) return;
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
}
