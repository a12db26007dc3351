/**
 * Control characters from the image (OSRELEASE, utsname, eraseinfo, header
 * strings) never reach the terminal raw: info, the filter, analyze and
 * validate reports and JSON show them escaped.
 */
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliWith, type Run } from '../cli/run.js';
import { buildElfCore, taggedPage, vmcoreinfoNote } from '../builders/elf-builder.js';
import { buildKdump } from '../builders/kdump-builder.js';
import { tempDir, type TempDir } from '../helpers/guests.js';

/** Text as the bytes were: a raw control byte must show as one. */
const cli = (...argv: string[]): Promise<Run> => cliWith({ encoding: 'latin1' }, ...argv);

/** Control characters other than the newlines that end lines. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

const EVIL = 'x\x1b[2J\x1b]0;owned\x07\x9b31m\ny';

let dir: TempDir;
let elf: string;
let kdump: string;
beforeAll(async () => {
  dir = await tempDir('dumpsieve-escape-');
  elf = dir.file('evil.vmcore');
  await writeFile(
    elf,
    buildElfCore({
      notes: [vmcoreinfoNote([`OSRELEASE=5.10${EVIL.replace('\n', '')}`, 'PAGESIZE=4096'])],
      segments: [{ paddr: 0, data: Buffer.concat([taggedPage(0), taggedPage(1)]) }],
    }),
  );
  kdump = dir.file('evil.kdump');
  await writeFile(
    kdump,
    buildKdump({
      maxPfn: 16,
      headerVersion: 5,
      pages: [{ pfn: 1 }, { pfn: 2 }],
      utsname: { nodename: `host${EVIL}`, release: `6.1${EVIL}` },
      eraseinfo: `erase ${EVIL} size 8\n`,
    }),
  );
});
afterAll(() => dir.remove());

describe('control characters from the image are escaped wherever printed', () => {
  it('info: OSRELEASE, utsname, eraseinfo', async () => {
    for (const f of [elf, kdump]) {
      const r = await cli('info', f);
      expect(r.code, r.stderr).toBe(0);
      expect(RAW_CONTROL.test(r.stdout), r.stdout).toBe(false);
      expect(r.stdout).toContain('\\x1b[2J\\x1b]0;owned\\x07\\x9b31m');
    }
    const k = await cli('info', kdump);
    expect(k.stdout).toContain('  utsname: Linux hostx\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\x0ay 6.1x');
    expect(k.stdout).toContain('eraseinfo:\n  erase x\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\n  y size 8\n');
  });

  it('the filter, analyze and validate reports, and JSON', async () => {
    const f = await cli('filter', '-d', '0', elf, dir.file('out.kdump'));
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toContain('Linux 5.10x\\x1b[2J');
    expect(RAW_CONTROL.test(f.stderr)).toBe(false);
    const flags = dir.file('flags');
    await writeFile(flags, new Uint8Array(16));
    for (const argv of [['analyze', '--flags', flags, elf], ['validate', elf]]) {
      const r = await cli(...argv);
      expect([0, 3], r.stderr).toContain(r.code);
      expect(r.stdout).toContain('Linux 5.10x\\x1b[2J');
      expect(RAW_CONTROL.test(r.stdout), argv[0]).toBe(false);
    }
    const j = await cli('info', '--json', kdump);
    expect(RAW_CONTROL.test(j.stdout)).toBe(false);
    expect(j.stdout).toContain('\\u001b[2J\\u001b]0;owned\\u0007\\u009b31m\\ny');
    expect((JSON.parse(j.stdout) as { utsname: { release: string } }).utsname.release).toBe(`6.1${EVIL}`);
  });
});
