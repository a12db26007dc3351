/**
 * contrib/kdump/dumpsieve-collector, the kdump core collector with
 * makedumpfile's command line: it runs dumpsieve, hands makedumpfile-only
 * options to makedumpfile, and falls back to makedumpfile (with the same
 * arguments) when dumpsieve refuses the arguments or fails, except after
 * part of a -F stream has gone out. makedumpfile is a stub here that
 * records how it was called; dumpsieve is the entry under test (the
 * bundle's launcher with DUMPSIEVE_BIN, else bin/dumpsieve.js).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../helpers/guests.js';
import { PINNED } from '../formats/kdump/pinned-output.js';
import { BIN } from '../cli/run.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bundled = BIN ? join(dirname(BIN), 'dumpsieve-collector') : undefined;
const COLLECTOR = bundled && existsSync(bundled) ? bundled : join(root, 'contrib/kdump/dumpsieve-collector');
const SAMPLE = join(root, 'samples/xen-hvm-balloon.vmcore.br');
const LZO_D31 = PINNED.find(([s, l, c]) => s === 'xen-hvm-balloon' && l === 31 && c === 'lzo')![3];

let dir: TempDir;
let dumpsieve: string;
let stub: string;

beforeAll(async () => {
  dir = await tempDir('dumpsieve-collector-');
  if (BIN && !/\.m?js$/.test(BIN)) dumpsieve = BIN;
  else {
    dumpsieve = dir.file('dumpsieve');
    await writeFile(dumpsieve, `#!/bin/sh\nexec "${process.execPath}" "${BIN ?? join(root, 'bin/dumpsieve.js')}" "$@"\n`);
    await chmod(dumpsieve, 0o755);
  }
  // makedumpfile stand-in: logs its arguments, writes "makedumpfile" to the last one, exits $STUB_EXIT.
  stub = dir.file('makedumpfile.distrib');
  await writeFile(stub, `#!/bin/sh\necho "$*" >> "${dir.file('stub.log')}"\nfor last; do :; done\nprintf makedumpfile > "$last"\nexit \${STUB_EXIT:-0}\n`);
  await chmod(stub, 0o755);
});
afterAll(() => dir?.remove());

interface Result {
  status: number | null;
  stdout: Buffer;
  stderr: string;
  stubCalls: string[];
}

async function collect(args: string[], env: Record<string, string> = {}, collector = COLLECTOR): Promise<Result> {
  await writeFile(dir.file('stub.log'), '');
  const r = spawnSync('sh', [collector, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DUMPSIEVE: dumpsieve, DUMPSIEVE_MAKEDUMPFILE: stub, ...env },
    maxBuffer: 1 << 28,
  });
  const log = (await readFile(dir.file('stub.log'), 'utf8')).split('\n').filter(Boolean);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString(), stubCalls: log };
}

const sha = async (f: string): Promise<string> => createHash('sha256').update(await readFile(f)).digest('hex');

describe('dumpsieve-collector', () => {
  it('runs dumpsieve filter with makedumpfile-style arguments', async () => {
    const out = dir.file('a.kdump');
    const r = await collect(['-l', '--message-level', '7', '-d', '31', SAMPLE, out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stubCalls).toEqual([]);
    expect(await sha(out)).toBe(LZO_D31);
  });

  it('passes DUMPSIEVE_ARGS to dumpsieve only', async () => {
    const out = dir.file('b.kdump');
    const reasons = dir.file('b.reasons');
    const r = await collect(['-l', '-d', '31', SAMPLE, out], { DUMPSIEVE_ARGS: `--reasons ${reasons}` });
    expect(r.status).toBe(0);
    expect(existsSync(reasons)).toBe(true);
    expect(await sha(out)).toBe(LZO_D31);
  });

  it('hands makedumpfile-only options to makedumpfile', async () => {
    const out = dir.file('dmesg.txt');
    const r = await collect(['--dump-dmesg', SAMPLE, out]);
    expect(r.status).toBe(0);
    expect(r.stubCalls).toEqual([`--dump-dmesg ${SAMPLE} ${out}`]);
    expect(await readFile(out, 'utf8')).toBe('makedumpfile');
  });

  it('falls back to makedumpfile when dumpsieve refuses the arguments (exit 2)', async () => {
    const out = dir.file('c.kdump');
    const r = await collect(['-c', '--non-cyclic', '-d', '31', SAMPLE, out]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/dumpsieve refused the arguments \(exit 2\); makedumpfile takes over/);
    expect(r.stubCalls).toEqual([`-c --non-cyclic -d 31 ${SAMPLE} ${out}`]);
    expect(await readFile(out, 'utf8')).toBe('makedumpfile');
  });

  it('falls back to makedumpfile when dumpsieve cannot read the dump (exit 1), and returns its status', async () => {
    const bad = dir.file('bad.vmcore');
    await writeFile(bad, Buffer.alloc(4096, 0x5a));
    const out = dir.file('d.kdump');
    const ok = await collect(['-l', '-d', '31', bad, out]);
    expect(ok.stderr).toMatch(/^dumpsieve: .*bad\.vmcore: offset 0x0: not a dump/m);
    expect(ok.stderr).toMatch(/dumpsieve failed \(exit 1\); makedumpfile takes over/);
    expect(ok.stubCalls).toEqual([`-l -d 31 ${bad} ${out}`]);
    expect(ok.status).toBe(0);
    const failed = await collect(['-l', '-d', '31', bad, dir.file('e.kdump')], { STUB_EXIT: '1' });
    expect(failed.status).toBe(1);
  });

  it('does not append a second stream after a failed -F', async () => {
    const bad = dir.file('bad.vmcore');
    const r = await collect(['-F', '-l', '-d', '31', bad]);
    expect(r.status).toBe(1);
    expect(r.stubCalls).toEqual([]);
    expect(r.stderr).toMatch(/not appending a second stream/);
  });

  it('fails when there is no makedumpfile to fall back to', async () => {
    const bad = dir.file('bad.vmcore');
    const r = await collect(['-l', '-d', '31', bad, dir.file('f.kdump')], { DUMPSIEVE_MAKEDUMPFILE: dir.file('no-such-makedumpfile') });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no makedumpfile to fall back to/);
  });

  it('installed in place of makedumpfile, finds makedumpfile.distrib beside it and never calls itself', async () => {
    const bad = dir.file('bad.vmcore');
    const r = await collect(['-l', '-d', '31', bad, dir.file('g.kdump')], { DUMPSIEVE_MAKEDUMPFILE: '' }, await installedAsMakedumpfile());
    expect(r.status).toBe(0);
    expect(r.stubCalls).toHaveLength(1);
  });
});

/** A bin directory where `makedumpfile` is a link to the collector (dpkg-divert style) and makedumpfile.distrib the stub. */
async function installedAsMakedumpfile(): Promise<string> {
  const bin = dir.file('bin');
  await mkdir(bin, { recursive: true });
  const collector = join(bin, 'dumpsieve-collector');
  await copyFile(COLLECTOR, collector);
  await symlink(collector, join(bin, 'makedumpfile'));
  await copyFile(stub, join(bin, 'makedumpfile.distrib'));
  return join(bin, 'makedumpfile');
}
